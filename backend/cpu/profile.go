package cpu

import "time"

// opKind classifies the ops for the profile.
type opKind int

const (
	opQKV       opKind = iota // q, k, v projections
	opAttnOut                 // attention output projection
	opRouter                  // router matrix
	opUnembed                 // lm_head
	opAttention               // attention scores, softmax, weighted values
	opMoEGather               // MoE: gathering and block-splitting the inputs
	opMoEGateUp               // MoE: gate_up experts and SwiGLU
	opMoEDown                 // MoE: down experts and weighted sum
	opNorm                    // RMSNorm
	opRoPE                    // rotary embedding
	opOther                   // embed, add, top-k, copies, cache stores
	numOps
)

var opNames = [numOps]string{"qkv", "attn_out", "router", "unembed", "attention", "moe_gather", "moe_gate_up", "moe_down", "rmsnorm", "rope", "other"}

// OpTime is the time one kind of op took since the profile was enabled.
type OpTime struct {
	Name  string
	Time  time.Duration
	Calls int64
	Wait  time.Duration // of Time: the calling thread waiting for the workers
}

// profile accumulates op times; disabled it costs one branch per op.
type profile struct {
	on    bool
	time  [numOps]time.Duration
	wait  [numOps]time.Duration
	calls [numOps]int64
}

// SetProfile turns the per-op timing on or off and clears it.
func (b *Backend) SetProfile(on bool) {
	b.prof = profile{on: on}
	b.pool.timeWait = on
}

// Profile returns the time per op kind since SetProfile(true).
func (b *Backend) Profile() []OpTime {
	out := make([]OpTime, numOps)
	for k := range numOps {
		out[k] = OpTime{Name: opNames[k], Time: b.prof.time[k], Calls: b.prof.calls[k], Wait: b.prof.wait[k]}
	}
	return out
}

// begin starts timing an op (a zero time when profiling is off).
func (b *Backend) begin() time.Time {
	if !b.prof.on {
		return time.Time{}
	}
	b.pool.waited, b.cwait = 0, 0
	return time.Now()
}

// end charges the time since t0 to kind k.
func (b *Backend) end(k opKind, t0 time.Time) {
	if !b.prof.on {
		return
	}
	b.prof.time[k] += time.Since(t0)
	b.prof.wait[k] += b.pool.waited + b.cwait
	b.prof.calls[k]++
}
