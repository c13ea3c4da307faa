package kernels

import (
	"time"
	"unsafe"
)

// Pool runs a job, a list of matrix products or of attention items, across
// a persistent set of C threads in one cgo call, so no Go scheduling sits
// between the threads of an op: the calling thread is part 0, the workers
// spin on an atomic counter between jobs and sleep after a few
// milliseconds idle. Each product is cut into chunks of whole output rows
// (about 1 MB of weights) that the parts take from a shared counter, so a
// faster part takes more and none waits for another's fixed share; one job
// can hold the products of all the experts a batch selected. A chunk is
// computed with the same kernel a single call would use, so results do not
// depend on the thread count or on which part took which chunk.
//
// A Pool exists only for SIMD levels (NewPool returns nil for Generic and
// without cgo); it is not safe for concurrent use, and Close stops its
// threads. A Pool that is never closed keeps one sleeping thread per
// worker.
type Pool struct {
	isa     ISA
	threads int
	c       unsafe.Pointer // *C.gptoss_pool
	items   []poolItem
	attn    []poolAttn
	scores  []uintptr
	keep    []unsafe.Pointer // the Go memory the job's addresses point into
	job     *poolJob         // its own allocation: no Go pointers in it

	attnScores [][]float32 // SetAttention's arguments, for the checks
	attnSinks  []float32
	chunkBytes int // 0: the C default (tests set small chunks)
}

// poolItem, poolAttn and poolJob mirror gptoss_item, gptoss_attn_item and
// gptoss_job (pool.h) field for field; addresses are uintptr so the arrays
// hold no Go pointers when passed to C (keep holds the memory alive).
type poolItem struct {
	kind, n, rows, cols, align int
	dst, x, w, scales, bias    uintptr
}

type poolAttn struct {
	out, q uintptr
	h0, h1 int
	k, v   [3]uintptr
	nk     [3]int
}

type poolJob struct {
	isa               int
	items             uintptr
	nitems            int
	attn              uintptr
	nattn             int
	group, hd, stride int
	sinks, scores     uintptr
	scale             float32
	timeWait          int
	lut, scaleTab     uintptr
	chunkBytes        int
}

const (
	itemBF16   = 1
	itemMXFP4  = 2
	itemQ8     = 3 // the AVX-512 VNNI int8 kernel
	itemQ8AVX2 = 4 // the AVX2 int8 kernel
)

// NewPool returns a pool of `threads` parts (threads-1 new threads) for a
// SIMD level, or nil for Generic or a build without the C kernels.
func NewPool(isa ISA, threads int) *Pool {
	if isa == Generic || !simdBuilt || threads < 1 {
		return nil
	}
	c := poolNew(threads)
	if c == nil {
		return nil
	}
	return &Pool{isa: isa, threads: threads, c: c, job: new(poolJob)}
}

// Close stops the threads; the pool must not be used afterwards.
func (p *Pool) Close() {
	if p == nil || p.c == nil {
		return
	}
	poolFree(p.c)
	p.c = nil
}

// Threads is the number of parts a job is split into.
func (p *Pool) Threads() int { return p.threads }

func addr[T any](s []T) uintptr {
	if len(s) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&s[0]))
}

func (p *Pool) hold(ptrs ...unsafe.Pointer) {
	for _, q := range ptrs {
		if q != nil {
			p.keep = append(p.keep, q)
		}
	}
}

func ptr[T any](s []T) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(&s[0])
}

// MatMulBF16 adds the product ISA.MatMulBF16(dst, x, n, w, out, in, bias,
// 0, out) to the job.
func (p *Pool) MatMulBF16(dst, x []float32, n int, w []byte, out, in int, bias []float32) {
	checkRange("Pool.MatMulBF16", bf16OK(dst, x, n, w, out, in, bias), 0, out, out)
	p.items = append(p.items, poolItem{kind: itemBF16, n: n, rows: out, cols: in, align: 16,
		dst: addr(dst), x: addr(x), w: addr(w), bias: addr(bias)})
	p.hold(ptr(dst), ptr(x), ptr(w), ptr(bias))
}

// MatMulMXFP4 adds the product ISA.MatMulMXFP4(dst, xs, n, blocks, scales,
// rows, cols, bias, 0, rows) to the job.
func (p *Pool) MatMulMXFP4(dst, xs []float32, n int, blocks, scales []byte, rows, cols int, bias []float32) {
	checkRange("Pool.MatMulMXFP4", mxfp4OK(dst, xs, n, blocks, scales, rows, cols, bias), 0, rows, rows)
	p.items = append(p.items, poolItem{kind: itemMXFP4, n: n, rows: rows, cols: cols, align: 16,
		dst: addr(dst), x: addr(xs), w: addr(blocks), scales: addr(scales), bias: addr(bias)})
	p.hold(ptr(dst), ptr(xs), ptr(blocks), ptr(scales), ptr(bias))
}

// MatMulMXFP4Q8 adds the product ISA.MatMulMXFP4Q8(dst, xq, n, blocks,
// scales, rows, cols, bias, 0, rows) to the job, with the pool level's
// int8 kernel (ISA.Int8Kernel).
func (p *Pool) MatMulMXFP4Q8(dst []float32, xq []byte, n int, blocks, scales []byte, rows, cols int, bias []float32) {
	checkRange("Pool.MatMulMXFP4Q8", q8OK(dst, xq, n, blocks, scales, rows, cols, bias), 0, rows, rows)
	if !p.isa.Int8Kernel() {
		panic("kernels: Pool.MatMulMXFP4Q8 without an int8 kernel")
	}
	kind := itemQ8AVX2
	if p.isa.q8VNNI() {
		kind = itemQ8
	}
	p.items = append(p.items, poolItem{kind: kind, n: n, rows: rows, cols: cols, align: 16,
		dst: addr(dst), x: addr(xq), w: addr(blocks), scales: addr(scales), bias: addr(bias)})
	p.hold(ptr(dst), ptr(xq), ptr(blocks), ptr(scales), ptr(bias))
}

// SetAttention sets what every attention item of the job shares (the
// arguments of ISA.Attention other than out, q, the heads and the spans);
// scores holds one scratch slice per part, each at least as long as the
// longest item's key count.
func (p *Pool) SetAttention(group, hd, stride int, sinks []float32, scale float32, scores [][]float32) {
	if len(scores) < p.threads {
		panic("kernels: Pool.SetAttention: fewer score buffers than threads")
	}
	p.job.group, p.job.hd, p.job.stride, p.job.scale = group, hd, stride, scale
	p.job.sinks = addr(sinks)
	p.hold(ptr(sinks))
	p.scores = p.scores[:0]
	for _, s := range scores[:p.threads] {
		p.scores = append(p.scores, addr(s))
		p.hold(ptr(s))
	}
	p.attnScores = scores[:p.threads]
	p.attnSinks = sinks
}

// Attention adds ISA.Attention(out, q, h0, h1, group, hd, spans, sinks,
// scale, scores) to the job, with the shared arguments of SetAttention.
func (p *Pool) Attention(out, q []float32, h0, h1 int, spans *KeySpans) {
	if spans.Stride != p.job.stride {
		panic("kernels: Pool.Attention: key stride differs from SetAttention's")
	}
	ok := attentionOK(out, q, h0, h1, p.job.group, p.job.hd, spans, p.attnSinks)
	for _, s := range p.attnScores {
		ok = ok && len(s) >= spans.Total()
	}
	checkRange("Pool.Attention", ok, h0, h1, len(p.attnSinks))
	a := poolAttn{out: addr(out), q: addr(q), h0: h0, h1: h1}
	p.hold(ptr(out), ptr(q))
	for i := range 3 {
		a.k[i], a.v[i], a.nk[i] = addr(spans.K[i]), addr(spans.V[i]), spans.N[i]
		if spans.N[i] > 0 {
			p.hold(ptr(spans.K[i]), ptr(spans.V[i]))
		}
	}
	p.attn = append(p.attn, a)
}

// Run runs the job on all parts, clears it, and returns how long the
// calling thread waited for the other parts when timeWait is set.
func (p *Pool) Run(timeWait bool) time.Duration {
	j := p.job
	j.lut, j.scaleTab = uintptr(unsafe.Pointer(&e2m1Table[0])), uintptr(unsafe.Pointer(&scaleTable[0]))
	j.isa = int(p.isa)
	j.items, j.nitems = addr(p.items), len(p.items)
	j.attn, j.nattn = addr(p.attn), len(p.attn)
	j.scores = addr(p.scores)
	j.timeWait, j.chunkBytes = 0, p.chunkBytes
	if timeWait {
		j.timeWait = 1
	}
	var waited int64
	if j.nitems > 0 || j.nattn > 0 {
		waited = poolRun(p.c, j)
	}
	clear(p.keep)
	p.keep, p.items, p.attn = p.keep[:0], p.items[:0], p.attn[:0]
	p.attnScores, p.attnSinks = nil, nil
	*j = poolJob{}
	return time.Duration(waited)
}
