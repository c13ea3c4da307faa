package kernels

// Single-thread kernel throughput, reported as GB/s of weights read. The
// matrices are larger than the last-level cache so the numbers are
// memory-bound the way decode is.

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func BenchmarkMatVecBF16(b *testing.B) {
	const out, in = 32768, 2880
	r := rand.New(rand.NewPCG(1, 1))
	w := randomBytes(r, 2*out*in, 0, 255)
	for i := 1; i < len(w); i += 2 {
		w[i] &= 0x3F // finite, moderate values
	}
	x, dst := gaussians(r, in), make([]float32, out)
	for _, isa := range Supported() {
		b.Run(isa.String(), func(b *testing.B) {
			b.SetBytes(int64(len(w)))
			for b.Loop() {
				isa.MatMulBF16(dst, x, 1, w, out, in, nil, 0, out)
			}
		})
	}
}

func BenchmarkMatMulBF16(b *testing.B) {
	const out, in = 512, 2880
	r := rand.New(rand.NewPCG(1, 2))
	w := randomBytes(r, 2*out*in, 0, 255)
	for i := 1; i < len(w); i += 2 {
		w[i] &= 0x3F
	}
	for _, n := range []int{64, 512} {
		x, dst := gaussians(r, n*in), make([]float32, n*out)
		for _, isa := range Supported()[1:] {
			b.Run(fmt.Sprintf("%s/n=%d", isa, n), func(b *testing.B) {
				for b.Loop() {
					isa.MatMulBF16(dst, x, n, w, out, in, nil, 0, out)
				}
				b.ReportMetric(float64(2*n*out*in)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

func BenchmarkMatVecMXFP4(b *testing.B) {
	const rows, cols = 8 * 5760, 2880
	r := rand.New(rand.NewPCG(2, 1))
	blocks := randomBytes(r, rows*cols/2, 0, 255)
	scales := randomBytes(r, rows*cols/32, 115, 126)
	x, dst := gaussians(r, cols), make([]float32, rows)
	for _, isa := range Supported() {
		b.Run(isa.String(), func(b *testing.B) {
			b.SetBytes(int64(len(blocks) + len(scales)))
			for b.Loop() {
				isa.MatMulMXFP4(dst, x, 1, blocks, scales, rows, cols, nil, 0, rows)
			}
		})
	}
}

func BenchmarkMatMulMXFP4(b *testing.B) {
	const rows, cols = 5760, 2880
	r := rand.New(rand.NewPCG(2, 2))
	blocks := randomBytes(r, rows*cols/2, 0, 255)
	scales := randomBytes(r, rows*cols/32, 115, 126)
	for _, n := range []int{8, 64} {
		x, dst := gaussians(r, n*cols), make([]float32, n*rows)
		for _, isa := range Supported()[1:] {
			b.Run(fmt.Sprintf("%s/n=%d", isa, n), func(b *testing.B) {
				for b.Loop() {
					isa.MatMulMXFP4(dst, x, n, blocks, scales, rows, cols, nil, 0, rows)
				}
				b.ReportMetric(float64(2*n*rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkMatMulMXFP4Q8: the int8-activation product (each level's
// kernel: AVX-512 VNNI, AVX2), single thread, in the float product's
// GFLOP/s (2·rows·cols per token).
func BenchmarkMatMulMXFP4Q8(b *testing.B) {
	const rows, cols = 5760, 2880
	r := rand.New(rand.NewPCG(2, 4))
	blocks := randomBytes(r, rows*cols/2, 0, 255)
	scales := randomBytes(r, rows*cols/32, 115, 126)
	for _, n := range []int{1, 8, 64} {
		x, dst := gaussians(r, n*cols), make([]float32, n*rows)
		qb := Q8Bytes(cols)
		xq := make([]byte, n*qb)
		for t := range n {
			QuantizeQ8(xq[t*qb:(t+1)*qb], x[t*cols:(t+1)*cols], cols)
		}
		for _, isa := range Supported()[1:] {
			b.Run(fmt.Sprintf("%v/n=%d", isa, n), func(b *testing.B) {
				for b.Loop() {
					isa.MatMulMXFP4Q8(dst, xq, n, blocks, scales, rows, cols, nil, 0, rows)
				}
				b.ReportMetric(float64(2*n*rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

func BenchmarkReadStream(b *testing.B) {
	buf := make([]byte, 256<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for _, isa := range Supported() {
		b.Run(isa.String(), func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				isa.ReadStream(buf)
			}
		})
	}
}

// BenchmarkMatVecMXFP4InCache is the same product on a matrix that fits in
// L2: the kernel's compute speed, which must exceed the memory bandwidth
// per core for decode to be memory-bound.
func BenchmarkMatVecMXFP4InCache(b *testing.B) {
	const rows, cols = 256, 2880
	r := rand.New(rand.NewPCG(2, 3))
	blocks := randomBytes(r, rows*cols/2, 0, 255)
	scales := randomBytes(r, rows*cols/32, 115, 126)
	x, dst := gaussians(r, cols), make([]float32, rows)
	for _, isa := range Supported()[1:] {
		b.Run(isa.String(), func(b *testing.B) {
			b.SetBytes(int64(len(blocks) + len(scales)))
			for b.Loop() {
				isa.MatMulMXFP4(dst, x, 1, blocks, scales, rows, cols, nil, 0, rows)
			}
		})
	}
	xq := make([]byte, Q8Bytes(cols))
	QuantizeQ8(xq, x, cols)
	for _, isa := range Supported()[1:] { // the int8-activation kernels (--int8-experts)
		b.Run(isa.String()+"-int8", func(b *testing.B) {
			b.SetBytes(int64(len(blocks) + len(scales)))
			for b.Loop() {
				isa.MatMulMXFP4Q8(dst, xq, 1, blocks, scales, rows, cols, nil, 0, rows)
			}
		})
	}
}

// BenchmarkMatVecBF16InCache: the BF16 product's compute speed (L2).
func BenchmarkMatVecBF16InCache(b *testing.B) {
	const out, in = 64, 2880
	r := rand.New(rand.NewPCG(1, 3))
	w := randomBytes(r, 2*out*in, 0, 255)
	for i := 1; i < len(w); i += 2 {
		w[i] &= 0x3F
	}
	x, dst := gaussians(r, in), make([]float32, out)
	for _, isa := range Supported()[1:] {
		b.Run(isa.String(), func(b *testing.B) {
			b.SetBytes(int64(len(w)))
			for b.Loop() {
				isa.MatMulBF16(dst, x, 1, w, out, in, nil, 0, out)
			}
		})
	}
}

// BenchmarkQuantizeQ8: the int8 mode's activation quantiser (one 2880-wide
// row, as each MoE input and SwiGLU output is), the Go twin and the C
// version this CPU runs, in GB/s of float32 input.
func BenchmarkQuantizeQ8(b *testing.B) {
	const cols = 2880
	x := gaussians(rand.New(rand.NewPCG(5, 5)), cols)
	dst := make([]byte, Q8Bytes(cols))
	for name, quantize := range map[string]func([]byte, []float32, int){"go": quantizeQ8, "auto": QuantizeQ8} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(4 * cols)
			for b.Loop() {
				quantize(dst, x, cols)
			}
		})
	}
}
