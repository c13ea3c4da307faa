// Package cpu is the CPU backend: weights stay in the checkpoint mapping in
// their stored formats (BF16 matrices, MXFP4 experts), activations and the
// KV cache are float32 slices, and the ops call the kernels package.
package cpu

import (
	"fmt"

	"github.com/gptoss/gptoss/attention"
	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/kernels"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/mxfp4"
)

// Backend is the CPU backend. It is not safe for concurrent use: one
// engine loop drives it, and it reuses its scratch buffers between ops.
type Backend struct {
	scratch []float32
}

// New returns a CPU backend.
func New() *Backend { return &Backend{} }

// Name implements backend.Backend.
func (b *Backend) Name() string { return "cpu" }

// matrix is a stored BF16 matrix [rows, cols] aliasing the mapping.
type matrix struct {
	shape []int
	data  []byte
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
		return &matrix{shape: t.Shape, data: t.Data}, nil
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
	x := &experts{shape: s, blocks: w.Blocks.Data, scales: w.Scales.Data, bias: make([]float32, e*rows)}
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
	if cap(b.scratch) < n {
		b.scratch = make([]float32, n)
	}
	return b.scratch[:n]
}
