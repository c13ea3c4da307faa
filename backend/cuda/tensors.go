package cuda

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/kernels"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/mxfp4"

	"github.com/gptoss/gptoss/backend/cuda/driver"
)

// matrix is a BF16 matrix [rows, cols] on the device, as stored.
type matrix struct {
	shape []int
	p     driver.DevicePtr
}

// vector is a small weight (norm gain, bias, sinks) widened to float32 at
// upload, as the CPU backend does.
type vector struct {
	shape []int
	p     driver.DevicePtr
	n     int
}

// experts is one MXFP4 projection of all experts of a layer: blocks
// [E, rows, groups, 16] and scales [E, rows, groups] as stored, bias
// widened to float32 [E, rows].
type experts struct {
	shape               []int
	blocks, scales, bia driver.DevicePtr
}

// floats is a float32 activation tensor [rows, cols]; err is set when its
// allocation failed (NewActivations cannot return one), and every op that
// gets it reports it.
type floats struct {
	rows, cols int
	p          driver.DevicePtr
	err        error
}

// ints is an int32 tensor [rows, cols].
type ints struct {
	rows, cols int
	p          driver.DevicePtr
	err        error
}

func (t *matrix) Shape() []int  { return t.shape }
func (t *vector) Shape() []int  { return t.shape }
func (t *experts) Shape() []int { return t.shape }
func (t *floats) Shape() []int  { return []int{t.rows, t.cols} }
func (t *ints) Shape() []int    { return []int{t.rows, t.cols} }

func (t *floats) dims() backend.Dims { return backend.Dims{Rows: t.rows, Cols: t.cols} }
func (t *ints) dims() backend.Dims   { return backend.Dims{Rows: t.rows, Cols: t.cols} }

func (t *floats) row(r int) driver.DevicePtr { return t.p + driver.DevicePtr(4*r*t.cols) }

// upload copies host bytes to new device memory and waits until the copy
// is done (a pageable copy may still be in flight when cuMemcpyHtoD
// returns, and the ops run on another stream).
func (b *Backend) upload(name string, data []byte) (driver.DevicePtr, error) {
	p, err := b.ctx.Alloc(int64(len(data)))
	if err != nil {
		return 0, fmt.Errorf("cuda: %s: %w", name, err)
	}
	if err := b.ctx.CopyHtoD(p, data); err != nil {
		b.ctx.Free(p)
		return 0, fmt.Errorf("cuda: %s: %w", name, err)
	}
	if err := b.ctx.Synchronize(); err != nil {
		b.ctx.Free(p)
		return 0, fmt.Errorf("cuda: %s: %w", name, err)
	}
	return p, nil
}

func f32bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

func i32bytes(v []int32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

// Weight implements backend.Backend.
func (b *Backend) Weight(t loader.Tensor) (backend.Tensor, error) {
	if t.DType != loader.BF16 {
		return nil, fmt.Errorf("cuda: %s: dtype %s, want BF16", t.Name, t.DType)
	}
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	if len(t.Data) != 2*n || n == 0 {
		return nil, fmt.Errorf("cuda: %s: %d bytes for shape %v", t.Name, len(t.Data), t.Shape)
	}
	switch len(t.Shape) {
	case 1:
		f := make([]float32, n)
		kernels.DecodeBF16(f, t.Data)
		p, err := b.upload(t.Name, f32bytes(f))
		if err != nil {
			return nil, err
		}
		v := &vector{shape: t.Shape, p: p, n: n}
		freeOnCleanup(b, v, p)
		return v, nil
	case 2:
		p, err := b.upload(t.Name, t.Data)
		if err != nil {
			return nil, err
		}
		m := &matrix{shape: t.Shape, p: p}
		freeOnCleanup(b, m, p)
		return m, nil
	}
	return nil, fmt.Errorf("cuda: %s: shape %v is neither a vector nor a matrix", t.Name, t.Shape)
}

// Experts implements backend.Backend.
func (b *Backend) Experts(w loader.ExpertWeights) (backend.Tensor, error) {
	s := w.Blocks.Shape
	if len(s) != 4 || s[3] != mxfp4.BlockBytes {
		return nil, fmt.Errorf("cuda: %s: shape %v, want [experts, rows, groups, %d]", w.Blocks.Name, s, mxfp4.BlockBytes)
	}
	e, rows, groups := s[0], s[1], s[2]
	if len(w.Blocks.Data) != e*rows*groups*mxfp4.BlockBytes || len(w.Scales.Data) != e*rows*groups || len(w.Bias.Data) != 2*e*rows || e*rows*groups == 0 {
		return nil, fmt.Errorf("cuda: %s: blocks, scales and bias sizes disagree with shape %v", w.Blocks.Name, s)
	}
	bias := make([]float32, e*rows)
	kernels.DecodeBF16(bias, w.Bias.Data)
	x := &experts{shape: s}
	var err error
	if x.blocks, err = b.upload(w.Blocks.Name, w.Blocks.Data); err != nil {
		return nil, err
	}
	if x.scales, err = b.upload(w.Scales.Name, w.Scales.Data); err != nil {
		b.ctx.Free(x.blocks)
		return nil, err
	}
	if x.bia, err = b.upload(w.Bias.Name, f32bytes(bias)); err != nil {
		b.ctx.Free(x.blocks)
		b.ctx.Free(x.scales)
		return nil, err
	}
	freeOnCleanup(b, x, x.blocks, x.scales, x.bia)
	return x, nil
}

// NewActivations implements backend.Backend.
func (b *Backend) NewActivations(rows, cols int) backend.Tensor {
	t := &floats{rows: rows, cols: cols}
	t.p, t.err = b.alloc("activations", rows, cols)
	if t.err == nil {
		freeOnCleanup(b, t, t.p)
	}
	return t
}

// NewIndices implements backend.Backend.
func (b *Backend) NewIndices(rows, cols int) backend.Tensor {
	t := &ints{rows: rows, cols: cols}
	t.p, t.err = b.alloc("indices", rows, cols)
	if t.err == nil {
		freeOnCleanup(b, t, t.p)
	}
	return t
}

func (b *Backend) alloc(what string, rows, cols int) (driver.DevicePtr, error) {
	if rows <= 0 || cols <= 0 {
		return 0, fmt.Errorf("cuda: %s [%d, %d]: sizes must be positive", what, rows, cols)
	}
	p, err := b.ctx.Alloc(int64(4 * rows * cols))
	if err != nil {
		return 0, fmt.Errorf("cuda: %s [%d, %d]: %w", what, rows, cols, err)
	}
	return p, nil
}

// ReadFloats implements backend.Backend.
func (b *Backend) ReadFloats(dst []float32, t backend.Tensor, n int) error {
	f, ok := t.(*floats)
	if !ok || f.err != nil || n < 0 || n > f.rows || len(dst) < n*f.cols {
		return fmt.Errorf("cuda: read: cannot read %d rows of %v into %d floats", n, t.Shape(), len(dst))
	}
	err := b.read(f32bytes(dst[:n*f.cols]), f.p)
	// read synchronises, which frees the memory of collected tensors: f
	// must not be one of them before the copy is done (found on the H100,
	// where a test's output was freed under its own read).
	runtime.KeepAlive(f)
	return err
}

// ReadInts implements backend.Backend.
func (b *Backend) ReadInts(dst []int32, t backend.Tensor, n int) error {
	f, ok := t.(*ints)
	if !ok || f.err != nil || n < 0 || n > f.rows || len(dst) < n*f.cols {
		return fmt.Errorf("cuda: read: cannot read %d rows of %v into %d ints", n, t.Shape(), len(dst))
	}
	err := b.read(i32bytes(dst[:n*f.cols]), f.p)
	runtime.KeepAlive(f) // as in ReadFloats
	return err
}

// read runs what is queued, waits for the stream (the legacy-stream copy
// does not wait for it), reports an error the kernels flagged, and copies
// device memory to dst.
func (b *Backend) read(dst []byte, src driver.DevicePtr) error {
	if err := b.flush(); err != nil {
		return err
	}
	if err := b.queueStatus(); err != nil {
		return err
	}
	if err := b.sync(); err != nil {
		return err
	}
	if err := b.statusError(); err != nil {
		return err
	}
	return b.ctx.CopyDtoH(dst, src)
}

// kvCache is one sequence's keys and values on the device, float32 like
// the CPU cache. Sliding layers hold a ring of Window positions; full
// layers grow geometrically up to MaxLen (reallocated and copied on the
// stream), so a short chat does not reserve the whole context.
type kvCache struct {
	b      *Backend
	spec   backend.KVSpec
	kvDim  int
	length int
	layers []kvLayer
}

type kvLayer struct {
	ring     bool
	capacity int // positions
	k, v     driver.DevicePtr
}

// NewKVCache implements backend.Backend.
func (b *Backend) NewKVCache(s backend.KVSpec) (backend.KVCache, error) {
	if len(s.Sliding) != s.Layers {
		return nil, fmt.Errorf("cuda: kv cache: %d sliding flags for %d layers", len(s.Sliding), s.Layers)
	}
	if s.KVHeads <= 0 || s.HeadDim <= 0 || s.MaxLen <= 0 {
		return nil, fmt.Errorf("cuda: kv cache: kv heads %d, head dim %d and max length %d must be positive", s.KVHeads, s.HeadDim, s.MaxLen)
	}
	c := &kvCache{b: b, spec: s, kvDim: s.KVHeads * s.HeadDim, layers: make([]kvLayer, s.Layers)}
	for l, sl := range s.Sliding {
		if sl {
			if s.Window <= 0 {
				return nil, fmt.Errorf("cuda: kv cache: layer %d slides but the window is %d", l, s.Window)
			}
			if err := c.grow(l, s.Window); err != nil {
				c.Free()
				return nil, err
			}
			c.layers[l].ring = true
		}
	}
	return c, nil
}

// grow makes layer l hold at least need positions.
func (c *kvCache) grow(l, need int) error {
	ly := &c.layers[l]
	if need <= ly.capacity {
		return nil
	}
	capacity := need
	if !ly.ring {
		capacity = min(max(need, 2*ly.capacity, 256), c.spec.MaxLen)
	}
	bytes := int64(capacity * c.kvDim * 4)
	k, err := c.b.ctx.Alloc(bytes)
	if err != nil {
		return fmt.Errorf("cuda: kv cache layer %d, %d positions: %w", l, capacity, err)
	}
	v, err := c.b.ctx.Alloc(bytes)
	if err != nil {
		c.b.ctx.Free(k)
		return fmt.Errorf("cuda: kv cache layer %d, %d positions: %w", l, capacity, err)
	}
	if ly.capacity > 0 {
		// Queued launches may still write this cache (kv_store): run
		// them before copying.
		if err := c.b.drain(); err != nil {
			return err
		}
		old := ly.capacity * c.kvDim * 4
		if err := c.b.s.CopyDtoD(k, ly.k, old); err != nil {
			return err
		}
		if err := c.b.s.CopyDtoD(v, ly.v, old); err != nil {
			return err
		}
		if err := c.b.sync(); err != nil {
			return err
		}
		c.b.ctx.Free(ly.k)
		c.b.ctx.Free(ly.v)
	}
	ly.k, ly.v, ly.capacity = k, v, capacity
	return nil
}

func (c *kvCache) Len() int { return c.length }

func (c *kvCache) SetLen(n int) error {
	if n < 0 || n > c.spec.MaxLen {
		return fmt.Errorf("cuda: kv cache: length %d outside [0, %d]", n, c.spec.MaxLen)
	}
	c.length = n
	return nil
}

func (c *kvCache) Bytes() int64 {
	var n int64
	for _, l := range c.layers {
		n += int64(2 * l.capacity * c.kvDim * 4)
	}
	return n
}

func (c *kvCache) Free() {
	if c.layers != nil {
		c.b.drain() // queued attention may still read the cache
	}
	for _, l := range c.layers {
		c.b.ctx.Free(l.k)
		c.b.ctx.Free(l.v)
	}
	c.layers, c.length = nil, 0
}
