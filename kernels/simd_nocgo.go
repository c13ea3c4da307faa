//go:build !(cgo && amd64)

package kernels

// Without cgo (or off amd64) only the Go kernels exist; Supported never
// offers a SIMD level, so these stubs are never reached.
import "unsafe"

const simdBuilt = false

func simdMatMulBF16(isa ISA, dst, x []float32, n int, w []byte, out, in int, bias []float32, lo, hi int) {
	matMulBF16Rows(dst, x, n, w, out, in, bias, lo, hi)
}

func simdMatMulMXFP4(isa ISA, dst, xs []float32, n int, blocks, scales []byte, rows, cols int, bias []float32, lo, hi int) {
	matMulMXFP4Rows(dst, xs, n, blocks, scales, rows, cols, bias, lo, hi)
}

func simdAttention(isa ISA, out, q []float32, h0, h1, group, hd int, spans *KeySpans, sinks []float32, scale float32, scores []float32) {
	attentionHeads(out, q, h0, h1, group, hd, spans, sinks, scale, scores)
}

func simdSwiGLU(isa ISA, act, gateUp []float32, alpha, limit float32) {
	SwiGLU(act, gateUp, alpha, limit)
}

func simdReadStream(isa ISA, b []byte) uint64 { return readStream(b) }

func poolNew(threads int) unsafe.Pointer         { return nil }
func poolFree(p unsafe.Pointer)                  {}
func poolRun(p unsafe.Pointer, j *poolJob) int64 { panic("kernels: no C pool in this build") }

func simdMatMulMXFP4Q8(vnni bool, dst []float32, xq []byte, n int, blocks, scales []byte, rows, cols int, bias []float32, lo, hi int) {
	matMulMXFP4Q8Rows(dst, xq, n, blocks, scales, rows, cols, bias, lo, hi)
}

func simdQuantizeQ8(_ bool, dst []byte, x []float32, cols int) { quantizeQ8(dst, x, cols) }
