package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The VNNI kernel (and the C pool's int8 items) against the Go twin on odd
// sizes, chunk tails (cols of 1-3 blocks past a multiple of 4) and split
// row ranges: bit-exact, since the block sums are exact integers and the
// float epilogue runs in the same order. The twin against the float32
// product, within the error of the int8 activations.
func TestMatVecMXFP4Q8(t *testing.T) {
	if !HasVNNI() {
		t.Log("no AVX-512 VNNI here: only the Go twin is checked")
	}
	r := rand.New(rand.NewPCG(5, 2))
	var pool *Pool
	if HasVNNI() {
		pool = NewPool(AVX512, 2)
		defer pool.Close()
	}
	for _, rows := range []int{1, 7, 8, 9, 17, 40} {
		for _, cols := range []int{32, 64, 96, 128, 160, 224, 416, 2880} {
			groups := cols / 32
			blocks := randomBytes(r, rows*groups*16, 0, 255)
			scales := randomBytes(r, rows*groups, 118, 130)
			scales[0] = 0 // a subnormal scale
			x := gaussians(r, cols)
			for i := range cols / 7 {
				x[i*7] = 0 // and some zero blocks
			}
			clear(x[:min(cols, 32)])
			bias := gaussians(r, rows)
			xq := make([]byte, Q8Bytes(cols))
			QuantizeQ8(xq, x, cols)
			want := make([]float32, rows)
			matVecMXFP4Q8Rows(want, xq, blocks, scales, rows, cols, bias, 0, rows)

			ref := make([]float32, rows)
			MatVecMXFP4(ref, x, blocks, scales, rows, cols, bias)
			for o := range rows {
				var mag float64
				for c := range cols {
					mag += math.Abs(float64(x[c])) * 6 * float64(scaleAt(scales, o*groups+c/32))
				}
				// |x − q·d| ≤ d/2 = max|x|/254 per column: a loose bound.
				if d := math.Abs(float64(want[o] - ref[o])); d > 2e-2*mag+1e-5 {
					t.Fatalf("%d×%d row %d: int8 %g, float %g (mag %g)", rows, cols, o, want[o], ref[o], mag)
				}
			}
			if !HasVNNI() {
				continue
			}
			got := make([]float32, rows)
			for _, split := range []int{0, rows / 3, rows} {
				AVX512.MatVecMXFP4Q8(got, xq, blocks, scales, rows, cols, bias, 0, split)
				AVX512.MatVecMXFP4Q8(got, xq, blocks, scales, rows, cols, bias, split, rows)
				for o := range rows {
					if math.Float32bits(got[o]) != math.Float32bits(want[o]) {
						t.Fatalf("%d×%d split %d row %d: vnni %g, twin %g", rows, cols, split, o, got[o], want[o])
					}
				}
			}
			clear(got)
			pool.MatVecMXFP4Q8(got, xq, blocks, scales, rows, cols, bias)
			pool.Run(false)
			for o := range rows {
				if math.Float32bits(got[o]) != math.Float32bits(want[o]) {
					t.Fatalf("%d×%d row %d: pool %g, twin %g", rows, cols, o, got[o], want[o])
				}
			}
		}
	}
}

func scaleAt(scales []byte, i int) float32 {
	e := scales[i]
	if e == 0 {
		return math.Float32frombits(1 << 22)
	}
	return math.Float32frombits(uint32(e) << 23)
}
