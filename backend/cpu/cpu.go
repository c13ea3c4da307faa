// Package cpu is the CPU backend: weights stay in the checkpoint mapping in
// their stored formats (BF16 matrices, MXFP4 experts), activations and the
// KV cache are float32 slices, and the ops call the kernels package. The
// heavy ops (matrix products, attention, experts) are split by rows across
// a persistent worker pool; the SIMD level is chosen once at construction.
package cpu

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/gptoss/gptoss/attention"
	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/kernels"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/mxfp4"
)

// Backend is the CPU backend. It is not safe for concurrent use: one
// engine loop drives it, and it reuses its task structs and scratch
// buffers between ops, so a forward pass allocates nothing once they have
// grown to the largest batch.
type Backend struct {
	isa   kernels.ISA
	pool  *pool         // Go workers: the Generic level and builds without cgo
	cpool *kernels.Pool // C threads: the SIMD levels
	cwait time.Duration // the op's wait for the C threads (profile)
	huge  *arena        // weights copied to huge pages (SetHugePages), or nil
	int8x bool          // int8 activations for the expert products (SetInt8Experts)

	stats   backend.Stats
	prof    profile
	scratch []float32
	linear  linearTask
	attn    attentionTask
	moe     moeTask
}

// New returns a CPU backend with one thread per GOMAXPROCS and the fastest
// SIMD level of this CPU.
func New() *Backend {
	b, _ := NewWith(runtime.GOMAXPROCS(0), kernels.Detect())
	return b
}

// NewWith returns a CPU backend with the given thread count and SIMD level.
func NewWith(threads int, isa kernels.ISA) (*Backend, error) {
	if threads < 1 || threads > 1024 {
		return nil, fmt.Errorf("cpu: %d threads: want 1 … 1024", threads)
	}
	supported := false
	for _, s := range kernels.Supported() {
		supported = supported || s == isa
	}
	if !supported {
		return nil, fmt.Errorf("cpu: SIMD level %v is not supported here (have %v)", isa, kernels.Supported())
	}
	b := &Backend{isa: isa}
	// SIMD levels run their ops on C threads (no Go scheduling between
	// the parts of an op); the Go pool then has the calling goroutine only.
	if b.cpool = kernels.NewPool(isa, threads); b.cpool != nil {
		b.pool = newPool(1)
	} else {
		b.pool = newPool(threads)
		// The workers only reference the pool, so they can be stopped once
		// the backend is unreachable.
		runtime.AddCleanup(b, func(p *pool) { p.stop() }, b.pool)
	}
	b.attn.scores = make([][]float32, threads)
	return b, nil
}

// Close stops the backend's threads and frees the huge-page copies of the
// weights; it must not be used afterwards. A backend that is never closed
// keeps its C threads asleep until the process ends.
func (b *Backend) Close() {
	b.pool.stop()
	b.cpool.Close()
	b.cpool = nil
	if b.huge != nil {
		b.huge.free()
	}
}

// SetHugePages makes the weights loaded after it (Weight, Experts) be
// copied into anonymous memory advised for transparent huge pages instead
// of used in place from the checkpoint mapping: slower loading (a copy of
// every matrix) for faster streaming. The source pages are dropped from the
// process's mapping after each copy, so the process holds the weights once.
func (b *Backend) SetHugePages(on bool) {
	if on && b.huge == nil {
		b.huge = &arena{}
	}
	if !on {
		b.huge = nil // copies made so far stay until Close
	}
}

// SetInt8Experts makes the MoE use the int8-activation MXFP4 products
// (kernels.MatMulMXFP4Q8) for every batch, prefill and decode alike (so a
// row's bits still do not depend on the batch): the expert inputs
// quantised per 32-block to int8, integer block dot products (AVX-512
// VNNI or AVX2, the Go twin at the Generic level). Off by default:
// float32 everywhere.
func (b *Backend) SetInt8Experts(on bool) { b.int8x = on }

// place returns the weight bytes the ops will read: data itself, or its
// huge-page copy.
func (b *Backend) place(data []byte) ([]byte, error) {
	if b.huge == nil {
		return data, nil
	}
	return b.huge.copyIn(data)
}

// Stats returns the bytes the ops read since construction or the last
// ResetStats.
func (b *Backend) Stats() backend.Stats { return b.stats }

// ResetStats sets the counts to zero.
func (b *Backend) ResetStats() { b.stats = backend.Stats{} }

// Name implements backend.Backend.
func (b *Backend) Name() string { return "cpu" }

// Threads is the number of threads the heavy ops are split across.
func (b *Backend) Threads() int {
	if b.cpool != nil {
		return b.cpool.Threads()
	}
	return b.pool.parts
}

// ISA is the SIMD level the kernels run at.
func (b *Backend) ISA() kernels.ISA { return b.isa }

// matrix is a stored BF16 matrix [rows, cols] aliasing the mapping.
type matrix struct {
	shape []int
	data  []byte
	kind  opKind // for the profile, from the tensor's name
}

// matrixKind classifies a BF16 matrix by its name in either layout.
func matrixKind(name string) opKind {
	switch {
	case strings.Contains(name, "q_proj"), strings.Contains(name, "k_proj"), strings.Contains(name, "v_proj"), strings.Contains(name, "attn.qkv"):
		return opQKV
	case strings.Contains(name, "o_proj"), strings.Contains(name, "attn.out"):
		return opAttnOut
	case strings.Contains(name, "router"), strings.Contains(name, "mlp.gate."):
		return opRouter
	}
	return opUnembed
}

// vector is a small weight (norm gain, bias, sinks) widened to float32 at
// load: it is read once per row, and its size is negligible.
type vector struct {
	shape []int
	data  []float32
}

// experts is one MXFP4 projection for all experts of a layer.
type experts struct {
	shape          []int // [E, rows, groups, 16]
	blocks, scales []byte
	bias           []float32 // [E, rows]
}

// floats is a float32 activation tensor [rows, cols].
type floats struct {
	rows, cols int
	data       []float32
}

// ints is an int32 tensor [rows, cols].
type ints struct {
	rows, cols int
	data       []int32
}

func (t *matrix) Shape() []int  { return t.shape }
func (t *vector) Shape() []int  { return t.shape }
func (t *experts) Shape() []int { return t.shape }
func (t *floats) Shape() []int  { return []int{t.rows, t.cols} }
func (t *ints) Shape() []int    { return []int{t.rows, t.cols} }

func (t *floats) dims() backend.Dims { return backend.Dims{Rows: t.rows, Cols: t.cols} }
func (t *ints) dims() backend.Dims   { return backend.Dims{Rows: t.rows, Cols: t.cols} }

func (t *floats) row(r int) []float32 { return t.data[r*t.cols : (r+1)*t.cols] }

// Weight implements backend.Backend.
func (b *Backend) Weight(t loader.Tensor) (backend.Tensor, error) {
	if t.DType != loader.BF16 {
		return nil, fmt.Errorf("cpu: %s: dtype %s, want BF16", t.Name, t.DType)
	}
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	if len(t.Data) != 2*n {
		return nil, fmt.Errorf("cpu: %s: %d bytes for shape %v", t.Name, len(t.Data), t.Shape)
	}
	switch len(t.Shape) {
	case 1:
		v := &vector{shape: t.Shape, data: make([]float32, n)}
		kernels.DecodeBF16(v.data, t.Data)
		return v, nil
	case 2:
		data, err := b.place(t.Data)
		if err != nil {
			return nil, err
		}
		return &matrix{shape: t.Shape, data: data, kind: matrixKind(t.Name)}, nil
	}
	return nil, fmt.Errorf("cpu: %s: shape %v is neither a vector nor a matrix", t.Name, t.Shape)
}

// Experts implements backend.Backend.
func (b *Backend) Experts(w loader.ExpertWeights) (backend.Tensor, error) {
	s := w.Blocks.Shape
	if len(s) != 4 || s[3] != mxfp4.BlockBytes {
		return nil, fmt.Errorf("cpu: %s: shape %v, want [experts, rows, groups, %d]", w.Blocks.Name, s, mxfp4.BlockBytes)
	}
	e, rows, groups := s[0], s[1], s[2]
	if len(w.Blocks.Data) != e*rows*groups*mxfp4.BlockBytes || len(w.Scales.Data) != e*rows*groups || len(w.Bias.Data) != 2*e*rows {
		return nil, fmt.Errorf("cpu: %s: blocks, scales and bias sizes disagree with shape %v", w.Blocks.Name, s)
	}
	blocks, err := b.place(w.Blocks.Data)
	if err != nil {
		return nil, err
	}
	scales, err := b.place(w.Scales.Data)
	if err != nil {
		return nil, err
	}
	x := &experts{shape: s, blocks: blocks, scales: scales, bias: make([]float32, e*rows)}
	kernels.DecodeBF16(x.bias, w.Bias.Data)
	return x, nil
}

// NewActivations implements backend.Backend.
func (b *Backend) NewActivations(rows, cols int) backend.Tensor {
	return &floats{rows: rows, cols: cols, data: make([]float32, rows*cols)}
}

// NewIndices implements backend.Backend.
func (b *Backend) NewIndices(rows, cols int) backend.Tensor {
	return &ints{rows: rows, cols: cols, data: make([]int32, rows*cols)}
}

// NewKVCache implements backend.Backend.
func (b *Backend) NewKVCache(s backend.KVSpec) (backend.KVCache, error) {
	if len(s.Sliding) != s.Layers {
		return nil, fmt.Errorf("cpu: kv cache: %d sliding flags for %d layers", len(s.Sliding), s.Layers)
	}
	return attention.NewCache(s.KVHeads*s.HeadDim, s.Sliding, s.Window, s.MaxLen)
}

// ReadFloats implements backend.Backend.
func (b *Backend) ReadFloats(dst []float32, t backend.Tensor, n int) error {
	f, ok := t.(*floats)
	if !ok || n > f.rows || len(dst) < n*f.cols {
		return fmt.Errorf("cpu: read: cannot read %d rows of %v into %d floats", n, t.Shape(), len(dst))
	}
	copy(dst, f.data[:n*f.cols])
	return nil
}

// ReadInts implements backend.Backend.
func (b *Backend) ReadInts(dst []int32, t backend.Tensor, n int) error {
	f, ok := t.(*ints)
	if !ok || n > f.rows || len(dst) < n*f.cols {
		return fmt.Errorf("cpu: read: cannot read %d rows of %v into %d ints", n, t.Shape(), len(dst))
	}
	copy(dst, f.data[:n*f.cols])
	return nil
}

func (b *Backend) scratchFloats(n int) []float32 {
	b.scratch = grow(b.scratch, n)
	return b.scratch
}

// grow returns s resized to n, reallocating with headroom when it is too
// small, so that buffers sized by the context length (which grows by one
// per decoded token) are reallocated rarely.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		s = make([]float32, n, n+n/2)
	}
	return s[:n]
}
