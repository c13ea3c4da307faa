package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/backend/cpu"
	"github.com/gptoss/gptoss/backend/cuda"
	"github.com/gptoss/gptoss/kernels"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/model"
)

// DecodeOptions configure a llama-bench style run.
type DecodeOptions struct {
	PromptTokens int // pp: tokens prefilled in one batch (0 skips)
	GenTokens    int // tg: tokens decoded one at a time (0 skips)
	Repeats      int // timed repetitions after one warm-up
	Depth        int // tokens already in the context before pp and tg
	Threads      int
	ISA          kernels.ISA
	MemBWBytes   int64 // read-bandwidth buffer (0: 512 MiB)
	Profile      bool  // time every op kind of the decode steps
	HugePages    bool  // copy the weights to transparent huge pages at load
	Int8Experts  bool  // int8-activation expert products (cpu.SetInt8Experts)

	// GPU, when set, runs the benchmark on this CUDA backend instead of
	// the CPU (decode_cuda.go); Threads, ISA, Profile, HugePages and
	// Int8Experts are CPU options. The caller owns and closes it.
	GPU *cuda.Backend
	// NoGraphs runs the CUDA decode steps launch by launch instead of
	// replaying CUDA graphs.
	NoGraphs bool
	// TensorCores runs the CUDA batch products on the tensor cores
	// (cuda.Backend.SetTensorCores): prefill, not batch-1 decode.
	TensorCores bool
}

// OpProfile is the time of one kind of op, per decoded token (or, in the
// prefill profile, per prompt token).
type OpProfile struct {
	Op     string  `json:"op"`
	MsTok  float64 `json:"ms_per_token"`
	WaitMs float64 `json:"wait_ms_per_token"` // calling thread idle, waiting for the others
	Share  float64 `json:"share"`             // of the decode (prefill) time
	GBps   float64 `json:"gbps,omitempty"`    // weight bytes of this kind / its time
}

// Bytes splits the bytes read per decoded token by what was read.
type Bytes struct {
	Attention   float64 `json:"attention"`   // q, k, v, o matrices and biases
	Router      float64 `json:"router"`      // router matrix and bias
	Unembedding float64 `json:"unembedding"` // lm_head
	Experts     float64 `json:"experts"`     // the selected experts (their union over a batch)
	KV          float64 `json:"kv"`          // keys and values read by attention
	Embedding   float64 `json:"embedding"`   // the token's embedding row
}

// Report is the result of Decode; the JSON names are stable.
type Report struct {
	Device         string  `json:"device"` // "cpu" or "cuda:N (name)"
	Model          string  `json:"model"`
	Layers         int     `json:"layers"`
	Experts        int     `json:"experts"`
	Threads        int     `json:"threads"`
	ISA            string  `json:"isa"`
	PromptTokens   int     `json:"prompt_tokens"`
	GenTokens      int     `json:"gen_tokens"`
	Repeats        int     `json:"repeats"`
	Depth          int     `json:"depth"`
	LoadSeconds    float64 `json:"load_s"`
	Prefill        Rate    `json:"prefill"`
	Decode         Rate    `json:"decode"`
	PrefillTokS    float64 `json:"prefill_tok_s"`
	DecodeTokS     float64 `json:"decode_tok_s"`
	BytesPerToken  float64 `json:"bytes_per_token"`
	BytesBreakdown Bytes   `json:"bytes_breakdown"`
	DecodeGBps     float64 `json:"decode_gbps"`
	MemBWGBps      float64 `json:"membw_gbps"`
	Fraction       float64 `json:"fraction_of_membw"` // decode_gbps / membw_gbps
	// On CUDA: the theoretical bandwidth from the device attributes
	// (memory clock × bus width × 2), decode's fraction of it, and how
	// the op sequences ran (graphs captured, replayed).
	PeakGBps        float64          `json:"peak_gbps,omitempty"`
	FractionOfPeak  float64          `json:"fraction_of_peak,omitempty"`
	Graphs          *cuda.GraphStats `json:"cuda_graphs,omitempty"`
	Profile         []OpProfile      `json:"profile,omitempty"`         // decode steps
	PrefillProfile  []OpProfile      `json:"prefill_profile,omitempty"` // the timed prefills
	PeakRSS         int64            `json:"peak_rss_bytes"`
	CheckpointBytes int64            `json:"checkpoint_bytes"`
}

// Decode measures the read bandwidth, loads the checkpoint in dir on the
// CPU backend (or o.GPU), and times prefill and decode. Tokens are a fixed
// pseudo-random sequence: no tokenizer and no sampling inside the timing.
func Decode(ctx context.Context, dir string, o DecodeOptions) (*Report, error) {
	if o.PromptTokens < 0 || o.GenTokens < 0 || o.PromptTokens+o.GenTokens == 0 || o.Repeats < 1 || o.Depth < 0 {
		return nil, fmt.Errorf("bench: decode: need prompt or gen tokens, repeats ≥ 1, depth ≥ 0 (got %+v)", o)
	}
	if o.GPU != nil {
		return decodeCUDA(ctx, dir, o)
	}
	if o.Threads < 1 {
		return nil, fmt.Errorf("bench: decode: threads %d: want at least 1", o.Threads)
	}
	if o.MemBWBytes == 0 {
		o.MemBWBytes = 512 << 20
	}
	// Bandwidth first, before the checkpoint fills the page cache and RSS.
	bw, err := MemBW(o.ISA, o.Threads, o.MemBWBytes, 5)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	ck, err := loader.Open(dir)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	be, err := cpu.NewWith(o.Threads, o.ISA)
	if err != nil {
		return nil, err
	}
	defer be.Close()
	be.SetHugePages(o.HugePages)
	be.SetInt8Experts(o.Int8Experts)
	m, err := model.New(be, ck.Config, &ck.Weights)
	if err != nil {
		return nil, err
	}
	r := &Report{
		Device: "cpu", Model: dir, Layers: ck.Config.NumLayers, Experts: ck.Config.NumExperts,
		Threads: o.Threads, ISA: o.ISA.String(),
		PromptTokens: o.PromptTokens, GenTokens: o.GenTokens, Repeats: o.Repeats, Depth: o.Depth,
		LoadSeconds: time.Since(t0).Seconds(), MemBWGBps: bw.GBps,
		CheckpointBytes: weightBytes(&ck.Weights),
	}
	run := newRunner(m, o, &ck.Weights)
	run.cpu = be
	if err := run.measure(ctx, r); err != nil {
		return nil, err
	}
	// Again after the runs (and after the peak RSS was taken): a VM's
	// memory speed drifts over minutes, and the higher of the two keeps
	// the fraction from being flattered by a slow moment.
	after, err := MemBW(o.ISA, o.Threads, o.MemBWBytes, 5)
	if err != nil {
		return nil, err
	}
	if after.GBps > r.MemBWGBps {
		r.MemBWGBps = after.GBps
		if r.DecodeGBps > 0 {
			r.Fraction = r.DecodeGBps / r.MemBWGBps
		}
	}
	return r, nil
}

type runner struct {
	m       *model.Model
	cpu     *cpu.Backend  // the backend: one of cpu and gpu is set
	gpu     *cuda.Backend //
	o       DecodeOptions
	weights *loader.Weights
	st      *model.State
	logits  []float32
	tokens  []int32
	seq     []backend.Segment // the one sequence a step runs on
	last    []int             // the logit row a step reads back
	// profile turns the backend's op timing on for the timed prefill and
	// decode steps; prof and profPP sum it over the repeats.
	profile      bool
	prof, profPP []cpu.OpTime
}

func newRunner(m *model.Model, o DecodeOptions, w *loader.Weights) *runner {
	r := &runner{m: m, o: o, weights: w, tokens: pseudoTokens(o.Depth+max(o.PromptTokens, o.GenTokens), m.Config.VocabSize)}
	r.st = m.NewState(max(o.PromptTokens, min(o.Depth, 512), 1))
	r.logits = make([]float32, m.Config.VocabSize)
	r.seq, r.last = make([]backend.Segment, 1), make([]int, 1)
	return r
}

// measure runs the warm-up and the timed repetitions and fills in the
// rates, the bytes per decoded token and the bandwidth use of r (whose
// MemBWGBps the caller measured).
func (run *runner) measure(ctx context.Context, r *Report) error {
	o := run.o
	var pp, tg []float64
	var counted backend.Stats
	var decodeTime, prefillTime time.Duration
	for rep := range o.Repeats + 1 { // repeat 0 is the warm-up
		run.profile = o.Profile && rep > 0
		p, g, s, err := run.once(ctx)
		if err != nil {
			return err
		}
		if rep > 0 {
			pp, tg = append(pp, p), append(tg, g)
			counted = counted.Add(s)
			if g > 0 {
				decodeTime += time.Duration(float64(o.GenTokens) / g * float64(time.Second))
			}
			if p > 0 {
				prefillTime += time.Duration(float64(o.PromptTokens) / p * float64(time.Second))
			}
		}
	}
	if o.PromptTokens > 0 {
		r.Prefill = rateOf(pp)
		r.PrefillTokS = r.Prefill.Mean
		if o.Profile {
			r.PrefillProfile = opProfile(run.profPP, prefillTime, float64(o.PromptTokens*o.Repeats), nil)
		}
	}
	if o.GenTokens > 0 {
		r.Decode = rateOf(tg)
		r.DecodeTokS = r.Decode.Mean
		steps := float64(o.GenTokens * o.Repeats)
		r.BytesPerToken = float64(counted.Total()) / steps
		r.BytesBreakdown = breakdown(run.weights, counted, steps)
		r.DecodeGBps = r.BytesPerToken * r.DecodeTokS / 1e9
		r.Fraction = r.DecodeGBps / r.MemBWGBps
		if r.PeakGBps > 0 {
			r.FractionOfPeak = r.DecodeGBps / r.PeakGBps
		}
		if o.Profile {
			bytes := opBytes(run.weights, r.BytesBreakdown)
			if run.gpu != nil {
				bytes = kernelBytes(r.BytesBreakdown)
			}
			r.Profile = opProfile(run.prof, decodeTime, steps, bytes)
		}
	}
	r.PeakRSS = peakRSS()
	return nil
}

// resetStats and stats reach the byte counters of whichever backend runs.
func (r *runner) resetStats() error {
	if r.gpu != nil {
		return r.gpu.ResetStats()
	}
	r.cpu.ResetStats()
	return nil
}

func (r *runner) stats() (backend.Stats, error) {
	if r.gpu != nil {
		return r.gpu.Stats()
	}
	return r.cpu.Stats(), nil
}

// setProfile and takeProfile reach the op timing of whichever backend
// runs: the CPU backend times op kinds, the CUDA backend kernels.
func (r *runner) setProfile(on bool) error {
	if r.gpu != nil {
		return r.gpu.SetProfile(on)
	}
	r.cpu.SetProfile(on)
	return nil
}

func (r *runner) takeProfile() ([]cpu.OpTime, error) {
	if r.gpu == nil {
		return r.cpu.Profile(), nil
	}
	ks, err := r.gpu.Profile()
	if err != nil {
		return nil, err
	}
	out := make([]cpu.OpTime, len(ks))
	for i, k := range ks {
		out[i] = cpu.OpTime{Name: k.Name, Time: k.Time, Calls: k.Calls}
	}
	return out, nil
}

// addProfile adds p's times to sum's, by name (the kernels a GPU
// repetition runs need not come in the same order every time).
func addProfile(sum, p []cpu.OpTime) []cpu.OpTime {
	for _, op := range p {
		i := 0
		for i < len(sum) && sum[i].Name != op.Name {
			i++
		}
		if i == len(sum) {
			sum = append(sum, cpu.OpTime{Name: op.Name})
		}
		sum[i].Time += op.Time
		sum[i].Wait += op.Wait
		sum[i].Calls += op.Calls
	}
	return sum
}

// opProfile turns op times summed over the decode steps into per-token
// milliseconds, with the rest of the step time as "glue" (the model's
// Go code between ops), and the bandwidth of each weight-streaming op
// (bytes maps an op to its bytes per token).
func opProfile(ops []cpu.OpTime, total time.Duration, steps float64, bytes map[string]float64) []OpProfile {
	var out []OpProfile
	var sum time.Duration
	for _, op := range ops {
		sum += op.Time
		p := OpProfile{Op: op.Name, MsTok: op.Time.Seconds() * 1e3 / steps, WaitMs: op.Wait.Seconds() * 1e3 / steps,
			Share: op.Time.Seconds() / total.Seconds()}
		if v := bytes[op.Name]; v > 0 && op.Time > 0 {
			p.GBps = v * steps / op.Time.Seconds() / 1e9
		}
		out = append(out, p)
	}
	glue := total - sum
	return append(out, OpProfile{Op: "glue", MsTok: glue.Seconds() * 1e3 / steps, Share: glue.Seconds() / total.Seconds()})
}

// opBytes is what each weight-streaming op kind reads per decoded token.
func opBytes(w *loader.Weights, b Bytes) map[string]float64 {
	var qkv, out float64
	for _, l := range w.Layers {
		qkv += float64(len(l.Q.Data) + len(l.K.Data) + len(l.V.Data) + 2*(len(l.QBias.Data)+len(l.KBias.Data)+len(l.VBias.Data)))
		out += float64(len(l.O.Data) + 2*len(l.OBias.Data))
	}
	m := map[string]float64{"qkv": qkv, "attn_out": out, "router": b.Router, "unembed": b.Unembedding}
	if len(w.Layers) > 0 {
		gu, dn := float64(len(w.Layers[0].GateUp.Blocks.Data)), float64(len(w.Layers[0].Down.Blocks.Data))
		m["moe_gate_up"], m["moe_down"] = b.Experts*gu/(gu+dn), b.Experts*dn/(gu+dn)
	}
	return m
}

// kernelBytes is what each weight-streaming CUDA kernel reads per decoded
// token: every BF16 matrix goes through matvec_bf16 in decode.
func kernelBytes(b Bytes) map[string]float64 {
	return map[string]float64{
		"matvec_bf16":        b.Attention + b.Router + b.Unembedding,
		"moe_gate_up_swiglu": b.Experts * 2 / 3, // gate_up is twice down's size
		"moe_down":           b.Experts / 3,
	}
}

// once runs one repetition: the timed prefill and the timed decode steps,
// each on a fresh sequence that first holds the depth (untimed). As in
// llama-bench, pp and tg are separate tests at the same depth. It returns
// tokens/s of both and what the decode steps read.
func (r *runner) once(ctx context.Context) (pp, tg float64, read backend.Stats, err error) {
	if r.o.PromptTokens > 0 {
		if pp, err = r.prefill(ctx); err != nil {
			return 0, 0, read, err
		}
	}
	if r.o.GenTokens > 0 {
		if tg, read, err = r.decode(ctx); err != nil {
			return 0, 0, read, err
		}
	}
	return pp, tg, read, nil
}

// step runs tokens [start, start+n) at those positions of the sequence.
func (r *runner) step(ctx context.Context, start, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.seq[0].Pos, r.seq[0].Len = start, n
	r.last[0] = n - 1
	b := model.Batch{Tokens: r.tokens[start : start+n], Segments: r.seq, LogitRows: r.last}
	return r.m.Forward(r.st, b, r.logits, nil)
}

// sequence starts a sequence holding the depth, with room for n more
// tokens. The caller frees it.
func (r *runner) sequence(ctx context.Context, n int) (backend.KVCache, error) {
	depth := r.o.Depth
	cache, err := r.m.NewCache(depth + n)
	if err != nil {
		return nil, err
	}
	r.seq[0].Cache = cache
	for pos := 0; pos < depth; pos += r.st.Rows {
		if err := r.step(ctx, pos, min(r.st.Rows, depth-pos)); err != nil {
			cache.Free()
			return nil, err
		}
	}
	return cache, nil
}

// prefill times one prompt of PromptTokens tokens.
func (r *runner) prefill(ctx context.Context) (float64, error) {
	o := r.o
	cache, err := r.sequence(ctx, o.PromptTokens)
	if err != nil {
		return 0, err
	}
	defer cache.Free()
	if err := r.setProfile(r.profile); err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := r.step(ctx, o.Depth, o.PromptTokens); err != nil {
		return 0, err
	}
	pp := float64(o.PromptTokens) / time.Since(t0).Seconds()
	if r.profile {
		p, err := r.takeProfile()
		if err != nil {
			return 0, err
		}
		r.profPP = addProfile(r.profPP, p)
	}
	return pp, r.setProfile(false)
}

// decode times GenTokens decode steps and returns what they read.
func (r *runner) decode(ctx context.Context) (tg float64, read backend.Stats, err error) {
	o := r.o
	cache, err := r.sequence(ctx, o.GenTokens)
	if err != nil {
		return 0, read, err
	}
	defer cache.Free()
	if err := r.resetStats(); err != nil {
		return 0, read, err
	}
	if err := r.setProfile(r.profile); err != nil {
		return 0, read, err
	}
	defer r.setProfile(false)
	// Every step reads its logits back, so the clock stops only after
	// the device has finished the last one.
	t0 := time.Now()
	for i := range o.GenTokens {
		if err := r.step(ctx, o.Depth+i, 1); err != nil {
			return 0, read, err
		}
	}
	tg = float64(o.GenTokens) / time.Since(t0).Seconds()
	if read, err = r.stats(); err != nil {
		return 0, read, err
	}
	if r.profile {
		p, err := r.takeProfile()
		if err != nil {
			return 0, read, err
		}
		r.prof = addProfile(r.prof, p)
	}
	return tg, read, nil
}

// pseudoTokens is a fixed sequence of token ids below vocab (a 64-bit LCG).
func pseudoTokens(n, vocab int) []int32 {
	out := make([]int32, n)
	s := uint64(0x9E3779B97F4A7C15)
	for i := range out {
		s = s*6364136223846793005 + 1442695040888963407
		out[i] = int32((s >> 33) % uint64(vocab))
	}
	return out
}

// breakdown splits the counted dense bytes into attention, router and
// unembedding by the checkpoint's tensor sizes (biases are read widened to
// float32, twice their BF16 size); the rest are counted by kind directly.
func breakdown(w *loader.Weights, s backend.Stats, steps float64) Bytes {
	var attn, router float64
	for _, l := range w.Layers {
		attn += float64(len(l.Q.Data) + len(l.K.Data) + len(l.V.Data) + len(l.O.Data) +
			2*(len(l.QBias.Data)+len(l.KBias.Data)+len(l.VBias.Data)+len(l.OBias.Data)))
		router += float64(len(l.Router.Data) + 2*len(l.RouterBias.Data))
	}
	return Bytes{
		Attention: attn, Router: router, Unembedding: float64(len(w.LMHead.Data)),
		Experts: float64(s.Experts) / steps, KV: float64(s.KV) / steps, Embedding: float64(s.Embed) / steps,
	}
}

// weightBytes is the size of every tensor of the checkpoint.
func weightBytes(w *loader.Weights) int64 {
	n := len(w.Embed.Data) + len(w.FinalNorm.Data) + len(w.LMHead.Data)
	for _, l := range w.Layers {
		for _, t := range []loader.Tensor{l.AttnNorm, l.Q, l.K, l.V, l.QBias, l.KBias, l.VBias, l.O, l.OBias,
			l.Sinks, l.MLPNorm, l.Router, l.RouterBias, l.GateUp.Blocks, l.GateUp.Scales, l.GateUp.Bias,
			l.Down.Blocks, l.Down.Scales, l.Down.Bias} {
			n += len(t.Data)
		}
	}
	return int64(n)
}
