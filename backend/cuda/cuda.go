// Package cuda is the CUDA backend: weights are uploaded once (BF16
// matrices as BF16, MXFP4 experts still in MXFP4, 4.25 bits per weight),
// activations and the KV cache live on the device, and every op is a
// kernel from kernels/cuda queued on one stream. Only token ids, positions
// and the rows' cache addresses go up per op (through a pinned staging
// ring), and only requested logits and traced tensors come back.
//
// The driver is loaded at run time (backend/cuda/driver), so a binary with
// this package starts on a machine without a GPU; New then returns an
// error saying why, and the caller uses the CPU.
package cuda

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/backend/cuda/driver"
	kcuda "github.com/gptoss/gptoss/kernels/cuda"
)

// Backend is the CUDA backend on one GPU. Like the CPU backend it is not
// safe for concurrent use: one engine loop drives it.
type Backend struct {
	drv  *driver.Driver
	ctx  *driver.Context
	info driver.DeviceInfo
	mod  *driver.Module
	s    *driver.Stream
	k    kernelSet
	args driver.Args

	stage   stagingRing
	scratch [4]deviceBuf // attention partials; MoE hidden, act, y
	host    []byte       // host-side packing buffer, reused
}

// kernelSet holds every kernel of the module, looked up once.
type kernelSet struct {
	embed, rmsnorm, add, copyRows, rope          *driver.Function
	matvec, matmul                               *driver.Function
	attnSplit, attnCombine, kvStore              *driver.Function
	topk, gateUp, down, combine, grouped, swiglu *driver.Function
	argmax, topP                                 *driver.Function
}

// New opens GPU number ordinal: loads the driver, retains the device's
// primary context, loads the embedded fatbin and creates the stream.
func New(ordinal int) (*Backend, error) {
	drv, err := driver.Load()
	if err != nil {
		return nil, err
	}
	dev, err := drv.Device(ordinal)
	if err != nil {
		return nil, err
	}
	info, err := dev.Info()
	if err != nil {
		return nil, fmt.Errorf("cuda: device %d: %w", ordinal, err)
	}
	if info.Major < 8 {
		return nil, fmt.Errorf("cuda: device %d (%s) is sm_%d%d; the kernels are built for sm_80 and newer", ordinal, info.Name, info.Major, info.Minor)
	}
	ctx, err := dev.Retain()
	if err != nil {
		return nil, err
	}
	b := &Backend{drv: drv, ctx: ctx, info: info}
	if err := b.init(); err != nil {
		ctx.Release()
		return nil, fmt.Errorf("cuda: device %d (%s): %w", ordinal, info.Name, err)
	}
	return b, nil
}

func (b *Backend) init() error {
	var err error
	if b.mod, err = b.ctx.LoadModule(kcuda.Fatbin); err != nil {
		return err
	}
	if b.s, err = b.ctx.NewStream(); err != nil {
		return err
	}
	for _, f := range []struct {
		dst  **driver.Function
		name string
	}{
		{&b.k.embed, "embed_bf16"}, {&b.k.rmsnorm, "rmsnorm"}, {&b.k.add, "add_f32"},
		{&b.k.copyRows, "copy_rows"}, {&b.k.rope, "rope"},
		{&b.k.matvec, "matvec_bf16"}, {&b.k.matmul, "matmul_bf16"},
		{&b.k.attnSplit, "attn_split"}, {&b.k.attnCombine, "attn_combine"}, {&b.k.kvStore, "kv_store"},
		{&b.k.topk, "topk_softmax"}, {&b.k.gateUp, "moe_gate_up_swiglu"}, {&b.k.down, "moe_down"},
		{&b.k.combine, "moe_combine"}, {&b.k.grouped, "moe_grouped"}, {&b.k.swiglu, "swiglu"},
		{&b.k.argmax, "argmax_rows"}, {&b.k.topP, "sample_top_p"},
	} {
		if *f.dst, err = b.mod.Function(f.name); err != nil {
			return err
		}
	}
	return nil
}

// Name implements backend.Backend.
func (b *Backend) Name() string { return fmt.Sprintf("cuda:%d", b.info.Ordinal) }

// Device describes the GPU.
func (b *Backend) Device() driver.DeviceInfo { return b.info }

// Devices lists the GPUs the driver sees, or says why there are none.
func Devices() ([]driver.DeviceInfo, error) {
	_, infos, err := driver.Probe()
	return infos, err
}

// Synchronize waits for every queued op (benchmarks time with it).
func (b *Backend) Synchronize() error { return b.s.Synchronize() }

// launch queues a kernel with the packed arguments.
func (b *Backend) launch(f *driver.Function, grid, block driver.Dim3, shared int) error {
	return f.Launch(grid, block, shared, b.s, &b.args)
}

func (b *Backend) a() *driver.Args { return b.args.Reset() }

// deviceBuf is device memory that grows on demand and is freed with its
// owner.
type deviceBuf struct {
	p    driver.DevicePtr
	size int64
}

// ensure grows the buffer to at least n bytes; growing waits for the
// stream, since queued kernels may still use the old memory.
func (b *Backend) ensure(buf *deviceBuf, n int64) error {
	if n <= buf.size {
		return nil
	}
	if err := b.s.Synchronize(); err != nil {
		return err
	}
	n = max(n, 2*buf.size, 1<<16)
	if err := b.ctx.Free(buf.p); err != nil {
		return err
	}
	buf.p, buf.size = 0, 0
	p, err := b.ctx.Alloc(n)
	if err != nil {
		return err
	}
	buf.p, buf.size = p, n
	return nil
}

// stagingRing carries per-op host data (tokens, row lists, positions,
// cache addresses) to the device in order on the stream: a pinned buffer
// and a device buffer of the same size, filled front to back; when full
// the stream is drained and the ring starts again, so a region is never
// rewritten while a queued copy may still read it.
type stagingRing struct {
	host *driver.HostMem
	dev  driver.DevicePtr
	size int
	off  int
}

func (b *Backend) stageBytes(p []byte) (driver.DevicePtr, error) {
	r := &b.stage
	n := (len(p) + 255) &^ 255
	if n > r.size {
		if err := b.s.Synchronize(); err != nil {
			return 0, err
		}
		if r.host != nil {
			r.host.Free()
			b.ctx.Free(r.dev)
			r.host, r.dev, r.size = nil, 0, 0
		}
		size := max(n, 1<<20)
		h, err := b.ctx.HostAlloc(size)
		if err != nil {
			return 0, err
		}
		d, err := b.ctx.Alloc(int64(size))
		if err != nil {
			h.Free()
			return 0, err
		}
		r.host, r.dev, r.size, r.off = h, d, size, 0
	}
	if r.off+n > r.size {
		if err := b.s.Synchronize(); err != nil {
			return 0, err
		}
		r.off = 0
	}
	copy(r.host.Bytes()[r.off:], p)
	if err := b.s.CopyHtoD(r.dev+driver.DevicePtr(r.off), r.host, r.off, len(p)); err != nil {
		return 0, err
	}
	ptr := r.dev + driver.DevicePtr(r.off)
	r.off += n
	return ptr, nil
}

func (b *Backend) stageInts(v []int32) (driver.DevicePtr, error) {
	if len(v) == 0 {
		return b.stageBytes([]byte{0, 0, 0, 0})
	}
	return b.stageBytes(unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)))
}

func (b *Backend) stageFloats(v []float32) (driver.DevicePtr, error) {
	return b.stageBytes(unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)))
}

// Close frees the backend's own buffers and releases the context. Tensors
// from it must not be used afterwards.
func (b *Backend) Close() error {
	if b.s != nil {
		b.s.Synchronize()
	}
	for i := range b.scratch {
		b.ctx.Free(b.scratch[i].p)
	}
	if b.stage.host != nil {
		b.stage.host.Free()
		b.ctx.Free(b.stage.dev)
	}
	if b.s != nil {
		b.s.Destroy()
	}
	if b.mod != nil {
		b.mod.Unload()
	}
	return b.ctx.Release()
}

// freeOnCleanup frees device memory once its handle is unreachable: the
// Backend interface has no Free for tensors, as the CPU backend's are
// garbage collected.
func freeOnCleanup[T any](ctx *driver.Context, owner *T, ptrs ...driver.DevicePtr) {
	for _, p := range ptrs {
		runtime.AddCleanup(owner, func(p driver.DevicePtr) { ctx.Free(p) }, p)
	}
}

var _ backend.Backend = (*Backend)(nil)
