package kernels

// Per-op tests of the portable kernels against plain float64 code written
// straight from spec §5. The SIMD kernels are tested against these.

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gptoss/gptoss/mxfp4"
)

func randFloats(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * scale)
	}
	return x
}

// toBF16 rounds to BF16 (nearest even) and returns the bytes and the
// rounded values.
func toBF16(x []float32) ([]byte, []float64) {
	b := make([]byte, 2*len(x))
	v := make([]float64, len(x))
	for i, f := range x {
		u := math.Float32bits(f)
		u += 0x7FFF + (u>>16)&1
		h := uint16(u >> 16)
		b[2*i], b[2*i+1] = byte(h), byte(h>>8)
		v[i] = float64(math.Float32frombits(uint32(h) << 16))
	}
	return b, v
}

func near(t *testing.T, what string, got float32, want float64, tol float64) {
	t.Helper()
	if math.Abs(float64(got)-want) > tol*(1+math.Abs(want)) {
		t.Fatalf("%s: got %.9g, want %.9g", what, got, want)
	}
}

func TestBF16(t *testing.T) {
	// 1.0 = 0x3F80, -2.5 = 0xC020, smallest normal 2^-126 = 0x0080.
	b := []byte{0x80, 0x3F, 0x20, 0xC0, 0x80, 0x00}
	want := []float32{1, -2.5, float32(math.Ldexp(1, -126))}
	dst := make([]float32, 3)
	DecodeBF16(dst, b)
	for i := range want {
		if dst[i] != want[i] || BF16(b, i) != want[i] {
			t.Fatalf("element %d: %g / %g, want %g", i, dst[i], BF16(b, i), want[i])
		}
	}
}

func TestMatMulBF16(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sz := range []struct{ n, out, in int }{{1, 1, 1}, {1, 7, 13}, {3, 33, 65}, {5, 64, 96}} {
		wb, wv := toBF16(randFloats(r, sz.out*sz.in, 0.5))
		x := randFloats(r, sz.n*sz.in, 1)
		bias := randFloats(r, sz.out, 0.1)
		dst := make([]float32, sz.n*sz.out)
		MatMulBF16(dst, x, sz.n, wb, sz.out, sz.in, bias, make([]float32, sz.in))
		for row := range sz.n {
			for o := range sz.out {
				want := float64(bias[o])
				for i := range sz.in {
					want += wv[o*sz.in+i] * float64(x[row*sz.in+i])
				}
				near(t, "matmul", dst[row*sz.out+o], want, 1e-5)
			}
		}
		MatMulBF16(dst, x, sz.n, wb, sz.out, sz.in, nil, make([]float32, sz.in))
		for o := range sz.out {
			want := 0.0
			for i := range sz.in {
				want += wv[o*sz.in+i] * float64(x[i])
			}
			near(t, "matmul without bias", dst[o], want, 1e-5)
		}
	}
}

func TestMatVecMXFP4(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, sz := range []struct{ rows, cols int }{{1, 32}, {3, 64}, {17, 96}} {
		w := randFloats(r, sz.rows*sz.cols, 1)
		blocks := make([]byte, sz.rows*sz.cols/2)
		scales := make([]byte, sz.rows*sz.cols/32)
		mxfp4.EncodeRow(blocks, scales, w)
		dec := make([]float32, sz.rows*sz.cols)
		mxfp4.DecodeRow(dec, blocks, scales)
		x := randFloats(r, sz.cols, 1)
		bias := randFloats(r, sz.rows, 0.1)
		dst := make([]float32, sz.rows)
		MatVecMXFP4(dst, x, blocks, scales, sz.rows, sz.cols, bias)
		for o := range sz.rows {
			want := float64(bias[o])
			for c := range sz.cols {
				want += float64(dec[o*sz.cols+c]) * float64(x[c])
			}
			near(t, "mxfp4 matvec", dst[o], want, 1e-5)
		}
	}
}

func TestRMSNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	// A tiny row is where eps matters: 1e-5 vs 1e-6 changes the result.
	for _, scale := range []float64{1, 1e-3} {
		x := randFloats(r, 96, scale)
		g := randFloats(r, 96, 1)
		dst := make([]float32, 96)
		RMSNorm(dst, x, g, 1e-5)
		var ss float64
		for _, v := range x {
			ss += float64(v) * float64(v)
		}
		inv := 1 / math.Sqrt(ss/96+1e-5)
		for i := range x {
			near(t, "rmsnorm", dst[i], float64(x[i])*inv*float64(g[i]), 1e-6)
		}
	}
}

func TestSwiGLU(t *testing.T) {
	// gate, up pairs around and beyond the clamp at 7.
	gu := []float32{-10, -10, -1, 0.5, 0, 3, 2, 8, 7.5, -9, 100, 6.9}
	act := make([]float32, len(gu)/2)
	SwiGLU(act, gu, 1.702, 7)
	for i := range act {
		g := math.Min(float64(gu[2*i]), 7)
		u := math.Max(math.Min(float64(gu[2*i+1]), 7), -7)
		want := g / (1 + math.Exp(-1.702*g)) * (u + 1)
		near(t, "swiglu", act[i], want, 1e-6)
	}
}

func TestTopK(t *testing.T) {
	logits := []float32{0.5, 3, -1, 3, 2, 0.5, 7, -4}
	idx := make([]int32, 4)
	w := make([]float32, 4)
	TopK(idx, w, logits, 4)
	// Descending; the tie at 3 goes to the lower index first.
	wantIdx := []int32{6, 1, 3, 4}
	var sum float64
	for j, e := range wantIdx {
		sum += math.Exp(float64(logits[e] - 7))
		if idx[j] != e {
			t.Fatalf("idx %v, want %v", idx, wantIdx)
		}
	}
	for j, e := range wantIdx {
		near(t, "topk weight", w[j], math.Exp(float64(logits[e]-7))/sum, 1e-6)
	}
}
