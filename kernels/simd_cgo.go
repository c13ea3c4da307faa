//go:build cgo && amd64

package kernels

// #cgo CFLAGS: -O3 -fopenmp-simd -Wall -Wno-unknown-pragmas
// #include "simd.h"
// #include "pool.h"
import "C"

import "unsafe"

// The C kernels run one call per whole matrix or per thread's chunk of
// rows, so the cgo transition (~50 ns) is paid rarely.
const simdBuilt = true

func f32p(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&s[0]))
}

func u8p(s []byte) *C.uint8_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&s[0]))
}

func simdMatMulBF16(isa ISA, dst, x []float32, n int, w []byte, out, in int, bias []float32, lo, hi int) {
	wp := (*C.uint16_t)(unsafe.Pointer(&w[0]))
	if isa == AVX512 {
		C.gptoss_matmul_bf16_avx512(f32p(dst), f32p(x), C.long(n), wp, C.long(out), C.long(in), f32p(bias), C.long(lo), C.long(hi))
		return
	}
	C.gptoss_matmul_bf16_avx2(f32p(dst), f32p(x), C.long(n), wp, C.long(out), C.long(in), f32p(bias), C.long(lo), C.long(hi))
}

func simdMatMulMXFP4(isa ISA, dst, xs []float32, n int, blocks, scales []byte, rows, cols int, bias []float32, lo, hi int) {
	lut, tab := (*C.float)(unsafe.Pointer(&e2m1Table[0])), (*C.float)(unsafe.Pointer(&scaleTable[0]))
	if isa == AVX512 {
		C.gptoss_matmul_mxfp4_avx512(f32p(dst), f32p(xs), C.long(n), u8p(blocks), u8p(scales), C.long(rows), C.long(cols), f32p(bias), C.long(lo), C.long(hi), lut, tab)
		return
	}
	C.gptoss_matmul_mxfp4_avx2(f32p(dst), f32p(xs), C.long(n), u8p(blocks), u8p(scales), C.long(rows), C.long(cols), f32p(bias), C.long(lo), C.long(hi), lut, tab)
}

func simdAttention(isa ISA, out, q []float32, h0, h1, group, hd int, s *KeySpans, sinks []float32, scale float32, scores []float32) {
	if isa == AVX512 {
		C.gptoss_attention_avx512(f32p(out), f32p(q), C.long(h0), C.long(h1), C.long(group), C.long(hd),
			f32p(s.K[0]), f32p(s.V[0]), C.long(s.N[0]), f32p(s.K[1]), f32p(s.V[1]), C.long(s.N[1]),
			f32p(s.K[2]), f32p(s.V[2]), C.long(s.N[2]), C.long(s.Stride), f32p(sinks), C.float(scale), f32p(scores))
		return
	}
	C.gptoss_attention_avx2(f32p(out), f32p(q), C.long(h0), C.long(h1), C.long(group), C.long(hd),
		f32p(s.K[0]), f32p(s.V[0]), C.long(s.N[0]), f32p(s.K[1]), f32p(s.V[1]), C.long(s.N[1]),
		f32p(s.K[2]), f32p(s.V[2]), C.long(s.N[2]), C.long(s.Stride), f32p(sinks), C.float(scale), f32p(scores))
}

func simdSwiGLU(isa ISA, act, gateUp []float32, alpha, limit float32) {
	if isa == AVX512 {
		C.gptoss_swiglu_avx512(f32p(act), f32p(gateUp), C.long(len(act)), C.float(alpha), C.float(limit))
		return
	}
	C.gptoss_swiglu_avx2(f32p(act), f32p(gateUp), C.long(len(act)), C.float(alpha), C.float(limit))
}

func simdReadStream(isa ISA, b []byte) uint64 {
	if isa == AVX512 {
		return uint64(C.gptoss_read_stream_avx512(u8p(b), C.long(len(b))))
	}
	return uint64(C.gptoss_read_stream_avx2(u8p(b), C.long(len(b))))
}

func poolNew(threads int) unsafe.Pointer {
	return unsafe.Pointer(C.gptoss_pool_new(C.long(threads)))
}

func poolFree(p unsafe.Pointer) { C.gptoss_pool_free((*C.gptoss_pool)(p)) }

func poolRun(p unsafe.Pointer, j *poolJob) int64 {
	return int64(C.gptoss_pool_run((*C.gptoss_pool)(p), (*C.gptoss_job)(unsafe.Pointer(j))))
}

// The Go mirrors of the pool's C structs must have their layout.
var (
	_ [unsafe.Sizeof(C.gptoss_item{}) - unsafe.Sizeof(poolItem{})]byte
	_ [unsafe.Sizeof(poolItem{}) - unsafe.Sizeof(C.gptoss_item{})]byte
	_ [unsafe.Sizeof(C.gptoss_attn_item{}) - unsafe.Sizeof(poolAttn{})]byte
	_ [unsafe.Sizeof(poolAttn{}) - unsafe.Sizeof(C.gptoss_attn_item{})]byte
	_ [unsafe.Sizeof(C.gptoss_job{}) - unsafe.Sizeof(poolJob{})]byte
	_ [unsafe.Sizeof(poolJob{}) - unsafe.Sizeof(C.gptoss_job{})]byte
)

func simdMatMulMXFP4Q8(vnni bool, dst []float32, xq []byte, n int, blocks, scales []byte, rows, cols int, bias []float32, lo, hi int) {
	if !vnni {
		C.gptoss_matmul_mxfp4_q8_avx2(f32p(dst), u8p(xq), C.long(n), u8p(blocks), u8p(scales), C.long(rows), C.long(cols), f32p(bias), C.long(lo), C.long(hi))
		return
	}
	C.gptoss_matmul_mxfp4_q8_vnni(f32p(dst), u8p(xq), C.long(n), u8p(blocks), u8p(scales), C.long(rows), C.long(cols), f32p(bias), C.long(lo), C.long(hi))
}

func simdQuantizeQ8(vnni bool, dst []byte, x []float32, cols int) {
	if !vnni {
		C.gptoss_quantize_q8_avx2(u8p(dst), f32p(x), C.long(cols))
		return
	}
	C.gptoss_quantize_q8_avx512(u8p(dst), f32p(x), C.long(cols))
}
