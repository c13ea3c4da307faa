package kernels

// Every SIMD level this CPU supports is checked against the portable Go
// kernels (the twins) on odd sizes, tails and split row ranges.

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gptoss/gptoss/attention"
)

func gaussians(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func randomBytes(r *rand.Rand, n int, lo, hi int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(lo + r.IntN(hi-lo+1))
	}
	return b
}

// closeTo reports whether got matches want within float32 rounding of a
// sum whose terms have magnitudes adding up to mag.
func closeTo(got, want, mag float32) bool {
	return math.Abs(float64(got-want)) <= 2e-5*float64(mag)+1e-6
}

// forEachISA runs f for every supported SIMD level (not Generic, which is
// the twin itself).
func forEachISA(t *testing.T, f func(t *testing.T, isa ISA)) {
	for _, isa := range Supported() {
		t.Run(isa.String(), func(t *testing.T) { f(t, isa) })
	}
}

func TestISAMatMulBF16(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sizes := []struct{ n, out, in int }{{1, 1, 1}, {1, 7, 33}, {1, 9, 2880}, {2, 5, 17}, {3, 13, 45}, {4, 8, 64}, {5, 11, 129}, {9, 6, 31}, {67, 5, 40}, {70, 9, 16},
		{37, 21, 1043}} // the batch path's token, row and column blocks (32, 16, 512) and a tail
	forEachISA(t, func(t *testing.T, isa ISA) {
		for _, sz := range sizes {
			x := gaussians(r, sz.n*sz.in)
			wf := gaussians(r, sz.out*sz.in)
			w := make([]byte, 2*len(wf))
			for i, v := range wf {
				b := math.Float32bits(v)
				w[2*i], w[2*i+1] = byte(b>>16), byte(b>>24)
			}
			bias := gaussians(r, sz.out)
			for _, withBias := range []bool{true, false} {
				bv := bias
				if !withBias {
					bv = nil
				}
				want := make([]float32, sz.n*sz.out)
				MatMulBF16(want, x, sz.n, w, sz.out, sz.in, bv, make([]float32, sz.in))
				got := make([]float32, sz.n*sz.out)
				mid := sz.out / 3
				isa.MatMulBF16(got, x, sz.n, w, sz.out, sz.in, bv, 0, mid)
				isa.MatMulBF16(got, x, sz.n, w, sz.out, sz.in, bv, mid, sz.out)
				for i := range want {
					row, o := i/sz.out, i%sz.out
					var mag float32
					for k := range sz.in {
						mag += float32(math.Abs(float64(BF16(w, o*sz.in+k) * x[row*sz.in+k])))
					}
					if !closeTo(got[i], want[i], mag+1) {
						t.Fatalf("%+v bias=%v: dst[%d] = %g, want %g", sz, withBias, i, got[i], want[i])
					}
				}
			}
		}
	})
}

func TestISAMatMulMXFP4(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	sizes := []struct{ n, rows, cols int }{{1, 1, 32}, {1, 7, 96}, {1, 13, 2880}, {2, 3, 64}, {3, 5, 32}, {7, 9, 160}, {8, 4, 64}, {9, 33, 96}, {17, 35, 32}, {64, 6, 128},
		{37, 19, 1216}} // the batch path's token, row and group blocks (32, 16, 32) and a 2-block tail
	forEachISA(t, func(t *testing.T, isa ISA) {
		for _, sz := range sizes {
			g := sz.cols / 32
			blocks := randomBytes(r, sz.rows*g*16, 0, 255)
			scales := randomBytes(r, sz.rows*g, 115, 130)
			if sz.rows%2 == 1 {
				scales[r.IntN(len(scales))] = 0 // 2^-127: the kernels' subnormal scale path
			}
			bias := gaussians(r, sz.rows)
			x := gaussians(r, sz.n*sz.cols)
			xs := make([]float32, len(x))
			SplitBlocks(xs, x, sz.cols)
			want := make([]float32, sz.n*sz.rows)
			for tok := range sz.n {
				MatVecMXFP4(want[tok*sz.rows:(tok+1)*sz.rows], x[tok*sz.cols:(tok+1)*sz.cols], blocks, scales, sz.rows, sz.cols, bias)
			}
			got := make([]float32, len(want))
			mid := sz.rows/2 + 1
			isa.MatMulMXFP4(got, xs, sz.n, blocks, scales, sz.rows, sz.cols, bias, 0, mid)
			isa.MatMulMXFP4(got, xs, sz.n, blocks, scales, sz.rows, sz.cols, bias, mid, sz.rows)
			for i := range want {
				tok, o := i/sz.rows, i%sz.rows
				var mag float32
				for c := range sz.cols {
					code := blocks[(o*g+c/32)*16+(c%32)/2]
					if c%2 == 1 {
						code >>= 4
					}
					mag += float32(math.Abs(float64(e2m1Table[code&15] * scaleTable[scales[o*g+c/32]] * x[tok*sz.cols+c])))
				}
				if !closeTo(got[i], want[i], mag+1) {
					t.Fatalf("%+v: dst[%d] = %g, want %g", sz, i, got[i], want[i])
				}
			}
		}
	})
}

func TestISAAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const hd, kvHeads, group = 64, 3, 4
	heads, stride := kvHeads*group, kvHeads*hd
	forEachISA(t, func(t *testing.T, isa ISA) {
		for _, n := range [][3]int{{1, 0, 0}, {0, 0, 1}, {5, 3, 2}, {0, 7, 0}, {130, 0, 17}} {
			q := gaussians(r, heads*hd)
			sinks := gaussians(r, heads)
			var sp KeySpans
			sp.Stride = stride
			var keys, vals [][]float32
			for i := range 3 {
				sp.K[i], sp.V[i], sp.N[i] = gaussians(r, n[i]*stride), gaussians(r, n[i]*stride), n[i]
			}
			got := make([]float32, heads*hd)
			scores := make([]float32, sp.Total())
			isa.Attention(got, q, 0, 5, group, hd, &sp, sinks, 0.125, scores)
			isa.Attention(got, q, 5, heads, group, hd, &sp, sinks, 0.125, scores)
			want := make([]float32, hd)
			for h := range heads {
				keys, vals = keys[:0], vals[:0]
				off := h / group * hd
				for i := range 3 {
					for u := range n[i] {
						keys = append(keys, sp.K[i][u*stride+off:u*stride+off+hd])
						vals = append(vals, sp.V[i][u*stride+off:u*stride+off+hd])
					}
				}
				attention.SinkHead(want, q[h*hd:(h+1)*hd], keys, vals, sinks[h], 0.125, make([]float32, len(keys)))
				for j := range want {
					if !closeTo(got[h*hd+j], want[j], 10) {
						t.Fatalf("spans %v head %d: out[%d] = %g, want %g", n, h, j, got[h*hd+j], want[j])
					}
				}
			}
		}
	})
}

func TestISASwiGLU(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	forEachISA(t, func(t *testing.T, isa ISA) {
		for _, n := range []int{1, 7, 16, 33, 2880} {
			gu := gaussians(r, 2*n)
			for i := range gu {
				gu[i] *= 6 // reach both clamps and the tails of the sigmoid
			}
			want, got := make([]float32, n), make([]float32, n)
			SwiGLU(want, gu, 1.702, 7)
			isa.SwiGLU(got, gu, 1.702, 7)
			for i := range want {
				if !closeTo(got[i], want[i], float32(math.Abs(float64(want[i])))) {
					t.Fatalf("n=%d: act[%d] = %g, want %g (gate %g, up %g)", n, i, got[i], want[i], gu[2*i], gu[2*i+1])
				}
			}
		}
	})
}

func TestISAReadStream(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	forEachISA(t, func(t *testing.T, isa ISA) {
		for _, n := range []int{0, 1, 63, 256, 1000, 4099} {
			b := randomBytes(r, n+3, 0, 255)[3:] // unaligned start
			// The folds differ by ISA; only zero-ness of the XOR of equal
			// halves is portable, so check that reading two copies cancels.
			d := append(append([]byte{}, b...), b...)
			if n%128 == 0 && isa.ReadStream(d) != 0 {
				t.Fatalf("n=%d: two equal halves do not cancel", n)
			}
			_ = isa.ReadStream(b)
		}
	})
}

// TestISABatchInvariance: a row's result is bit-for-bit the same whatever
// the number of rows in the call, so batching never changes a sequence's
// output (the model's batch-invariance test relies on it).
func TestISABatchInvariance(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const rows, cols, n = 37, 1120, 35 // several of the batch path's blocks
	g := cols / 32
	blocks, scales := randomBytes(r, rows*g*16, 0, 255), randomBytes(r, rows*g, 115, 130)
	w := randomBytes(r, 2*rows*cols, 0, 255)
	for i := 1; i < len(w); i += 2 {
		w[i] &= 0x3F
	}
	x := gaussians(r, n*cols)
	forEachISA(t, func(t *testing.T, isa ISA) {
		all, one := make([]float32, n*rows), make([]float32, rows)
		isa.MatMulMXFP4(all, x, n, blocks, scales, rows, cols, nil, 0, rows)
		for tok := range n {
			isa.MatMulMXFP4(one, x[tok*cols:], 1, blocks, scales, rows, cols, nil, 0, rows)
			for o := range rows {
				if one[o] != all[tok*rows+o] {
					t.Fatalf("MXFP4 row %d output %d: %g alone, %g in a batch of %d", tok, o, one[o], all[tok*rows+o], n)
				}
			}
		}
		isa.MatMulBF16(all, x, n, w, rows, cols, nil, 0, rows)
		for tok := range n {
			isa.MatMulBF16(one, x[tok*cols:], 1, w, rows, cols, nil, 0, rows)
			for o := range rows {
				if one[o] != all[tok*rows+o] {
					t.Fatalf("BF16 row %d output %d: %g alone, %g in a batch of %d", tok, o, one[o], all[tok*rows+o], n)
				}
			}
		}
	})
}

// TestISAMXFP4TinyScales: scale bytes 0 (2^-127, a subnormal the kernels
// fix up) and 1 (2^-126) against x large enough to make them count.
func TestISAMXFP4TinyScales(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	const n, rows, cols = 3, 9, 160
	g := cols / 32
	blocks, scales := randomBytes(r, rows*g*16, 0, 255), randomBytes(r, rows*g, 0, 1)
	x := gaussians(r, n*cols)
	for i := range x {
		x[i] *= 0x1p120
	}
	xs := make([]float32, len(x))
	SplitBlocks(xs, x, cols)
	want := make([]float32, n*rows)
	for tok := range n {
		MatVecMXFP4(want[tok*rows:(tok+1)*rows], x[tok*cols:(tok+1)*cols], blocks, scales, rows, cols, nil)
	}
	forEachISA(t, func(t *testing.T, isa ISA) {
		got := make([]float32, n*rows)
		isa.MatMulMXFP4(got, xs, n, blocks, scales, rows, cols, nil, 0, rows)
		for i := range want {
			if !closeTo(got[i], want[i], 1e-3*float32(math.Abs(float64(want[i])))+1e-3) {
				t.Fatalf("dst[%d] = %g, want %g", i, got[i], want[i])
			}
		}
	})
}
