// Package backend defines the operations the model needs from a compute
// device. A backend owns every tensor it hands out (weights in their stored
// format, float32 activations, the KV cache), so a GPU backend can keep all
// of them on the device; the model only holds opaque handles and calls ops
// in the order of the forward pass.
package backend

import (
	"github.com/gptoss/gptoss/attention"
	"github.com/gptoss/gptoss/loader"
)

// Tensor is an opaque handle to memory owned by a backend. Only the backend
// that created it may use it.
type Tensor interface {
	// Shape is [rows, cols] for activations, the stored shape for weights.
	Shape() []int
}

// Segment is the run of rows in a batch that belong to one sequence: rows
// Row … Row+Len-1 hold that sequence's tokens at positions Pos … Pos+Len-1.
// Rows of one sequence are contiguous and in position order.
type Segment struct {
	Cache KVCache
	Row   int
	Pos   int
	Len   int
}

// KVSpec describes the per-sequence key/value cache geometry.
type KVSpec struct {
	Layers  int
	KVHeads int
	HeadDim int
	Sliding []bool // per layer: keep only the last Window positions
	Window  int
	MaxLen  int // largest position count a sequence may reach
}

// KVCache holds one sequence's keys (after RoPE) and values for every
// layer. Len is the number of positions already stored.
type KVCache interface {
	Len() int
	// SetLen records that positions 0 … n-1 are stored (after a forward
	// pass wrote them), or truncates the cache to n positions. Truncation of
	// a sliding layer below Len-Window loses keys it can no longer restore.
	SetLen(n int) error
	// Bytes is the memory the cache holds now.
	Bytes() int64
	// Free releases the cache's memory; it must not be used afterwards.
	Free()
}

// Stats counts the bytes a backend's ops read from weights and the KV
// cache, so a benchmark can report the bytes behind each decoded token as
// they were actually touched (the experts a batch selected, each once).
type Stats struct {
	Dense   int64 // BF16 matrices and their float32 biases: attention, router, unembedding
	Experts int64 // MXFP4 blocks, scales and float32 biases of the selected experts, once per batch
	KV      int64 // keys and values attention read, cached and new
	Embed   int64 // embedding rows
}

// Total is the sum of all kinds.
func (s Stats) Total() int64 { return s.Dense + s.Experts + s.KV + s.Embed }

// Add is the kind-by-kind sum of s and o.
func (s Stats) Add(o Stats) Stats {
	return Stats{Dense: s.Dense + o.Dense, Experts: s.Experts + o.Experts, KV: s.KV + o.KV, Embed: s.Embed + o.Embed}
}

// SwiGLU holds the clamped SwiGLU constants (spec §5 step 2i).
type SwiGLU struct {
	Alpha float32 // 1.702
	Limit float32 // 7
}

// Linear3 is implemented by backends that run three products of one input
// (a layer's q, k and v) faster as one op than as three Linear calls:
// dst[i] = x W[i]ᵀ + bias[i] for n rows, each bias possibly nil. Callers
// use it through Linear3Of.
type Linear3 interface {
	Linear3(x Tensor, n int, dst, w, bias [3]Tensor) error
}

// Linear3Of runs the three products on be: as one op where be implements
// Linear3, else as three Linear calls.
func Linear3Of(be Backend, x Tensor, n int, dst, w, bias [3]Tensor) error {
	if l, ok := be.(Linear3); ok {
		return l.Linear3(x, n, dst, w, bias)
	}
	for i := range 3 {
		if err := be.Linear(dst[i], x, w[i], bias[i], n); err != nil {
			return err
		}
	}
	return nil
}

// Backend is a compute device. Activation ops act on the first n rows of
// their operands; all activations are float32 [rows, cols].
type Backend interface {
	Name() string

	// Weight makes a stored BF16 tensor available to the backend without
	// converting its format.
	Weight(t loader.Tensor) (Tensor, error)
	// Experts makes one MXFP4 expert projection (blocks, scales, bias for
	// all experts of a layer) available, still in MXFP4.
	Experts(w loader.ExpertWeights) (Tensor, error)

	// NewActivations allocates a float32 [rows, cols] tensor.
	NewActivations(rows, cols int) Tensor
	// NewIndices allocates an int32 [rows, cols] tensor (routing choices).
	NewIndices(rows, cols int) Tensor
	// NewKVCache allocates an empty cache for one sequence.
	NewKVCache(spec KVSpec) (KVCache, error)
	// ReadFloats copies the first n rows of a float32 tensor to the host.
	ReadFloats(dst []float32, t Tensor, n int) error
	// ReadInts copies the first n rows of an int32 tensor to the host.
	ReadInts(dst []int32, t Tensor, n int) error

	// Embed sets dst[i] = table[tokens[i]] for every token.
	Embed(dst, table Tensor, tokens []int32) error
	// RMSNorm sets dst = x / sqrt(mean(x²) + eps) * gain, row by row.
	RMSNorm(dst, x, gain Tensor, n int, eps float32) error
	// Linear sets dst = x Wᵀ + bias for W stored [out, in]; bias may be nil.
	Linear(dst, x, w, bias Tensor, n int) error
	// Add sets dst += x.
	Add(dst, x Tensor, n int) error
	// RoPE rotates each head of x (half-split pairing) for the position of
	// its row, taken from the segments.
	RoPE(x Tensor, heads int, rope *attention.RoPE, segs []Segment) error
	// Attention computes softmax-with-sink attention for every row of q
	// against its sequence's cached keys and the rows' own k, v (causal,
	// sliding window on sliding layers), writes the heads concatenated to
	// out, and stores k, v of the rows into each segment's cache.
	Attention(out, q, k, v, sinks Tensor, layer int, scale float32, segs []Segment) error
	// TopK writes, per row of logits, the k largest indices (descending,
	// lowest index first on ties) and the softmax over those k values.
	TopK(idx, weights, logits Tensor, k, n int) error
	// MoE sets dst = Σ_j weights[j] · down_e(SwiGLU(gateUp_e(x))) over the
	// experts e = idx[j] of each row, biases included.
	MoE(dst, x, idx, weights, gateUp, down Tensor, act SwiGLU, n int) error
	// CopyRows sets dst[i] = src[rows[i]].
	CopyRows(dst, src Tensor, rows []int) error
}
