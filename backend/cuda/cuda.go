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
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
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
	args driver.Args // the next eager launch's arguments
	g    graphState  // deferred launches and CUDA graphs (graph.go)

	stage stagingRing
	// stageGen counts staging generations: it moves on whenever staged
	// memory may be reused (the ring wraps, the arena is flushed, either
	// is reallocated), so a staged address is reusable while it is equal.
	stageGen uint64
	rope     ropeCache
	scratch  [4]deviceBuf // attention partials; MoE hidden, act, y
	host     []byte       // host-side packing buffer, reused
	ints     []int32      // host-side index lists, reused
	floats   []float32    // host-side cos/sin rows, reused

	// status is a small device buffer the kernels report into: the
	// error word (statusErr) and the selected experts' bytes
	// (statusExperts); statusHost is its pinned landing place.
	status     driver.DevicePtr
	statusHost *driver.HostMem
	stats      backend.Stats // bytes counted on the host (all but the experts)

	// tiledShared is the dynamic shared memory attn_tiled may use (48 KiB
	// until raised for a larger head dimension).
	tiledShared int
	// tensorCores routes batch products to matmul_bf16_tc and the grouped
	// MoE product to moe_grouped_tc (SetTensorCores).
	tensorCores bool

	prof profiler // per-kernel timing (SetProfile)

	dead deadList
}

// Offsets in the status buffer.
const (
	statusErr     = 0 // int32: bit 0, an expert id out of range
	statusExperts = 8 // uint64: expert bytes read (moe_combine)
	statusBytes   = 16
)

// kernelSet holds every kernel of the module, looked up once.
type kernelSet struct {
	embed, rmsnorm, add, copyRows, rope          *driver.Function
	matvec, matmul, matmulTC                     *driver.Function
	attnSplit, attnCombine, attnTiled, kvStore   *driver.Function
	topk, gateUp, down, combine, grouped, swiglu *driver.Function
	groupedTC                                    *driver.Function
	argmax, topP, readBW                         *driver.Function
}

// deadList holds device memory whose Go handle was collected. It is freed
// at the next stream synchronisation rather than at once: a launch still
// in the graph queue may use it, and cuMemFree would also stall the
// device. The garbage collector's cleanups run on their own goroutine,
// hence the lock.
type deadList struct {
	mu   sync.Mutex
	ptrs []driver.DevicePtr
}

func (d *deadList) add(p driver.DevicePtr) {
	d.mu.Lock()
	d.ptrs = append(d.ptrs, p)
	d.mu.Unlock()
}

func (d *deadList) take() []driver.DevicePtr {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.ptrs
	d.ptrs = nil
	return p
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
	b := &Backend{drv: drv, ctx: ctx, info: info, tiledShared: 48 << 10}
	if err := b.init(); err != nil {
		b.Close()
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
		{&b.k.matvec, "matvec_bf16"}, {&b.k.matmul, "matmul_bf16"}, {&b.k.matmulTC, "matmul_bf16_tc"},
		{&b.k.attnSplit, "attn_split"}, {&b.k.attnCombine, "attn_combine"}, {&b.k.attnTiled, "attn_tiled"},
		{&b.k.kvStore, "kv_store"},
		{&b.k.topk, "topk_softmax"}, {&b.k.gateUp, "moe_gate_up_swiglu"}, {&b.k.down, "moe_down"},
		{&b.k.combine, "moe_combine"}, {&b.k.grouped, "moe_grouped"}, {&b.k.groupedTC, "moe_grouped_tc"}, {&b.k.swiglu, "swiglu"},
		{&b.k.argmax, "argmax_rows"}, {&b.k.topP, "sample_top_p"}, {&b.k.readBW, "read_bw"},
	} {
		if *f.dst, err = b.mod.Function(f.name); err != nil {
			return err
		}
	}
	if b.status, err = b.ctx.Alloc(statusBytes); err != nil {
		return err
	}
	if b.statusHost, err = b.ctx.HostAlloc(statusBytes); err != nil {
		return err
	}
	if err := b.s.Memset(b.status, 0, statusBytes); err != nil {
		return err
	}
	if b.g.copied, err = b.ctx.NewEvent(false); err != nil {
		return err
	}
	b.g.on = true
	return b.s.Synchronize()
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

// Synchronize runs every queued op and waits for it (benchmarks time
// with it).
func (b *Backend) Synchronize() error { return b.drain() }

// drain runs the graph queue, if any, and waits for the stream.
func (b *Backend) drain() error {
	if err := b.flush(); err != nil {
		return err
	}
	return b.sync()
}

// sync waits for the stream (whose work then includes every arena upload)
// and frees the memory of collected handles, which nothing can use now.
func (b *Backend) sync() error {
	if err := b.s.Synchronize(); err != nil {
		return err
	}
	b.g.inFlight = false
	for _, p := range b.dead.take() {
		b.ctx.Free(p)
	}
	return nil
}

// errBadExpert is what the MoE kernels report through the status word.
var errBadExpert = errors.New("cuda: moe: an expert index outside [0, experts): the indices did not come from TopK")

// queueStatus queues the copy of the kernels' error word to the host, to
// arrive with the caller's next synchronisation; statusError then reads it.
func (b *Backend) queueStatus() error {
	return b.s.CopyDtoH(b.statusHost, statusErr, b.status+statusErr, 4)
}

func (b *Backend) statusError() error {
	if binary.LittleEndian.Uint32(b.statusHost.Bytes()[statusErr:]) == 0 {
		return nil
	}
	// Report it once; the next ops start clean.
	binary.LittleEndian.PutUint32(b.statusHost.Bytes()[statusErr:], 0)
	if err := b.s.Memset(b.status+statusErr, 0, 4); err != nil {
		return err
	}
	return errBadExpert
}

// deviceBuf is device memory that grows on demand and is freed with its
// owner.
type deviceBuf struct {
	p    driver.DevicePtr
	size int64
}

// ensure grows the buffer to at least n bytes; growing runs and waits
// for what is queued, since those kernels may still use the old memory.
func (b *Backend) ensure(buf *deviceBuf, n int64) error {
	if n <= buf.size {
		return nil
	}
	if err := b.drain(); err != nil {
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

// regrow replaces r's buffers with ones of at least n bytes (1 MiB at
// least), empty; nothing queued may still use the old ones. Staged
// addresses change, so stageGen moves on.
func (b *Backend) regrow(r *stagingRing, n int) error {
	b.stageGen++
	r.free(b.ctx)
	size := max(n, 1<<20)
	h, err := b.ctx.HostAlloc(size)
	if err != nil {
		return err
	}
	d, err := b.ctx.Alloc(int64(size))
	if err != nil {
		h.Free()
		return err
	}
	r.host, r.dev, r.size, r.off = h, d, size, 0
	return nil
}

// free releases r's buffers, if any.
func (r *stagingRing) free(ctx *driver.Context) {
	if r.host != nil {
		r.host.Free()
		ctx.Free(r.dev)
	}
	r.host, r.dev, r.size, r.off = nil, 0, 0, 0
}

// stageBytes copies p to device memory that stays valid until the next
// drain. Staging may itself drain (a full ring or arena), so an op stages
// once, after every allocation it makes, and only then packs its launches.
func (b *Backend) stageBytes(p []byte) (driver.DevicePtr, error) {
	if b.g.on {
		return b.stageArena(p)
	}
	r := &b.stage
	n := (len(p) + 255) &^ 255
	if n > r.size {
		if err := b.sync(); err != nil {
			return 0, err
		}
		if err := b.regrow(r, n); err != nil {
			return 0, err
		}
	}
	if r.off+n > r.size {
		if err := b.sync(); err != nil {
			return 0, err
		}
		r.off = 0
		b.stageGen++
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

// Close runs what is queued, frees the backend's own buffers and releases
// the context. Tensors from it must not be used afterwards. It also
// cleans up after a failed New, so every field may be unset.
func (b *Backend) Close() error {
	if b.s != nil {
		b.drain()
	}
	b.dropGraphs()
	b.freeProfile()
	if b.g.copied != nil {
		b.g.copied.Destroy()
	}
	b.g.arena.free(b.ctx)
	for i := range b.scratch {
		b.ctx.Free(b.scratch[i].p)
	}
	b.stage.free(b.ctx)
	if b.statusHost != nil {
		b.statusHost.Free()
	}
	b.ctx.Free(b.status)
	if b.s != nil {
		b.s.Destroy()
	}
	if b.mod != nil {
		b.mod.Unload()
	}
	return b.ctx.Release()
}

// freeOnCleanup frees device memory once its handle is unreachable (the
// Backend interface has no Free for tensors, as the CPU backend's are
// garbage collected), at the backend's next synchronisation.
func freeOnCleanup[T any](b *Backend, owner *T, ptrs ...driver.DevicePtr) {
	for _, p := range ptrs {
		runtime.AddCleanup(owner, func(p driver.DevicePtr) { b.dead.add(p) }, p)
	}
}

var _ backend.Backend = (*Backend)(nil)
