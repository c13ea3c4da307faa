package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/cpu"
)

// Each level's int8 kernel (AVX-512 VNNI, AVX2) and the C pool's int8
// items against the Go twin on odd sizes, partial groups of 16 blocks,
// batches and split row ranges: bit-exact, since the block sums are exact
// integers and the float epilogue runs in the same order. The twin against
// the float32 product, within the error of the int8 activations, and
// against itself one row at a time.
func TestMatMulMXFP4Q8(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 2))
	var levels []ISA
	var pools []*Pool
	for _, isa := range Supported() {
		if isa.Int8Kernel() {
			levels = append(levels, isa)
			pools = append(pools, NewPool(isa, 2))
		}
	}
	defer func() {
		for _, p := range pools {
			p.Close()
		}
	}()
	if len(levels) == 0 {
		t.Log("no SIMD int8 kernel here: only the Go twin is checked")
	}
	for _, rows := range []int{1, 7, 8, 9, 17, 40} {
		// cols: one block, partial groups of 16 blocks, whole groups,
		// more groups than a panel block (4) holds, and rows too wide for
		// the decode path's copy of x (they take the batch path).
		for _, cols := range []int{32, 96, 160, 512, 544, 1024, 2880, 2048 + 512 + 96, 16384 + 512} {
			groups := cols / 32
			blocks := randomBytes(r, rows*groups*16, 0, 255)
			scales := randomBytes(r, rows*groups, 118, 130)
			scales[0] = 0 // a subnormal scale
			bias := gaussians(r, rows)
			for _, n := range []int{1, 3, 37} {
				x := gaussians(r, n*cols)
				for i := range n * cols / 7 {
					x[i*7] = 0 // and some zero blocks
				}
				clear(x[:min(cols, 32)])
				qb := Q8Bytes(cols)
				xq := make([]byte, n*qb)
				for tok := range n {
					QuantizeQ8(xq[tok*qb:(tok+1)*qb], x[tok*cols:(tok+1)*cols], cols)
				}
				want := make([]float32, n*rows)
				matMulMXFP4Q8Rows(want, xq, n, blocks, scales, rows, cols, bias, 0, rows)

				ref := make([]float32, rows)
				for tok := range n {
					MatVecMXFP4(ref, x[tok*cols:(tok+1)*cols], blocks, scales, rows, cols, bias)
					for o := range rows {
						var mag float64
						for c := range cols {
							mag += math.Abs(float64(x[tok*cols+c])) * 6 * float64(scaleAt(scales, o*groups+c/32))
						}
						// |x − q·d| ≤ d/2 = max|x|/254 per column: a loose bound.
						if d := math.Abs(float64(want[tok*rows+o] - ref[o])); d > 2e-2*mag+1e-5 {
							t.Fatalf("%d×%d n=%d token %d row %d: int8 %g, float %g (mag %g)", rows, cols, n, tok, o, want[tok*rows+o], ref[o], mag)
						}
					}
				}
				// One row at a time gives the same bits (batch invariance).
				one := make([]float32, rows)
				for tok := range n {
					matMulMXFP4Q8Rows(one, xq[tok*qb:], 1, blocks, scales, rows, cols, bias, 0, rows)
					for o := range rows {
						if math.Float32bits(one[o]) != math.Float32bits(want[tok*rows+o]) {
							t.Fatalf("%d×%d n=%d token %d row %d: alone %g, in the batch %g", rows, cols, n, tok, o, one[o], want[tok*rows+o])
						}
					}
				}
				for li, isa := range levels {
					got := make([]float32, n*rows)
					for _, split := range []int{0, rows / 3, rows} {
						isa.MatMulMXFP4Q8(got, xq, n, blocks, scales, rows, cols, bias, 0, split)
						isa.MatMulMXFP4Q8(got, xq, n, blocks, scales, rows, cols, bias, split, rows)
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%v %d×%d n=%d split %d out %d: %g, twin %g", isa, rows, cols, n, split, i, got[i], want[i])
							}
						}
					}
					clear(got)
					pools[li].MatMulMXFP4Q8(got, xq, n, blocks, scales, rows, cols, bias)
					pools[li].Run(false)
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%v %d×%d n=%d out %d: pool %g, twin %g", isa, rows, cols, n, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestQuantizeQ8: the C quantisers (each one this CPU runs) write the Go
// twin's bytes, ties (x/d exactly k + ½) and zero, tiny and huge blocks
// included.
func TestQuantizeQ8(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, cols := range []int{32, 64, 512, 544, 2880} {
		x := gaussians(r, cols)
		for i := range x {
			switch r.IntN(8) {
			case 0:
				x[i] = float32(r.IntN(255)-127) / 2 // ties once the block's max is 127
			case 1:
				x[i] *= 1e-30
			case 2:
				x[i] *= 1e30
			}
		}
		x[0] = 127 // block 0: d = 1 and halves: ties
		for i := 1; i < 32; i++ {
			x[i] = float32(r.IntN(255)-127) / 2
		}
		clear(x[32:min(cols, 64)])
		want := make([]byte, Q8Bytes(cols))
		quantizeQ8(want, x, cols)
		versions := map[string]func(dst []byte){"QuantizeQ8": func(dst []byte) { QuantizeQ8(dst, x, cols) }}
		if simdBuilt && cpu.X86.HasAVX2 && cpu.X86.HasFMA {
			versions["avx2"] = func(dst []byte) { simdQuantizeQ8(false, dst, x, cols) }
		}
		if HasVNNI() {
			versions["avx512"] = func(dst []byte) { simdQuantizeQ8(true, dst, x, cols) }
		}
		for name, quantize := range versions {
			got := make([]byte, Q8Bytes(cols))
			for i := range got {
				got[i] = 0xAA // every byte must be written
			}
			quantize(got)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s, cols %d: byte %d is %#x, the Go twin writes %#x", name, cols, i, got[i], want[i])
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
