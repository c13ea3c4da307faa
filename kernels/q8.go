package kernels

import (
	"encoding/binary"
	"math"

	"github.com/gptoss/gptoss/mxfp4"
	"golang.org/x/sys/cpu"
)

// The int8-activation MXFP4 product (llama.cpp's approach), an opt-in
// alternative to the float32 kernels: the activations are quantised per
// 32-column block to int8 with one float32 scale d = absmax/127. The E2M1
// codes doubled are exact integers in [-12, 12], so each block's dot
// product is an exact integer; the float epilogue is
// sum × (d × w_scale/2), accumulated in float32.
//
// The layout puts one block in each 32-bit lane, so that eight VNNI
// instructions (u8 × s8, four products per lane) give the exact sums of 16
// blocks and one float epilogue serves 512 columns. A quantised row is a
// sequence of groups of 16 blocks (the last may have fewer; its missing
// lanes are zero), each q8GroupBytes long:
//
//   - 8 vectors of 64 int8 values: vector v, lane j holds four columns of
//     block j: (v/2)·8 + 2i + v%2 for byte i (the columns whose codes are
//     the low (even v) or high (odd v) nibbles of code bytes 4·(v/2)…+3);
//   - 16 float32 scales d (lane j: block j);
//   - 16 int32 corrections 12·Σq (lane j: block j): the kernels multiply
//     the codes as unsigned u = 2·E2M1 + 12 ∈ [0, 24], and Σu·q − 12·Σq
//     is the signed sum.
const (
	q8GroupBlocks = 16
	q8GroupBytes  = 8*64 + 16*4 + 16*4
)

// Q8Bytes is the length of one quantised row of cols (a multiple of 32).
func Q8Bytes(cols int) int {
	groups := cols / mxfp4.BlockSize
	return (groups + q8GroupBlocks - 1) / q8GroupBlocks * q8GroupBytes
}

// q8Column is the column of block column byte i of vector v (see above).
func q8Column(v, i int) int { return v/2*8 + 2*i + v%2 }

// QuantizeQ8 quantises one row x of cols into dst (Q8Bytes(cols) bytes):
// per block q = round(x / d), d = max|x| / 127 (q = 0 where d = 0),
// rounding half away from zero. Where AVX2 runs, a C kernel (AVX-512
// with VNNI, else AVX2) writes the same bytes: the Go twin costs about
// as much per token as the int8 products it feeds.
func QuantizeQ8(dst []byte, x []float32, cols int) {
	dst, x = dst[:Q8Bytes(cols)], x[:cols]
	if simdBuilt && cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		simdQuantizeQ8(HasVNNI(), dst, x, cols)
		return
	}
	quantizeQ8(dst, x, cols)
}

// quantizeQ8 is QuantizeQ8's portable twin.
func quantizeQ8(dst []byte, x []float32, cols int) {
	blocks := cols / mxfp4.BlockSize
	clear(dst)
	for b := range blocks {
		xb := x[b*mxfp4.BlockSize : (b+1)*mxfp4.BlockSize]
		var m uint32 // max |x| as bits: ordered like the floats
		for _, v := range xb {
			m = max(m, math.Float32bits(v)&0x7FFFFFFF)
		}
		d := math.Float32frombits(m) / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		g, j := b/q8GroupBlocks, b%q8GroupBlocks
		grp := dst[g*q8GroupBytes:]
		var sum int32
		for v := range 8 {
			for i := range 4 {
				q := q8(xb[q8Column(v, i)] * id)
				grp[v*64+j*4+i] = q
				sum += int32(int8(q))
			}
		}
		binary.LittleEndian.PutUint32(grp[512+4*j:], math.Float32bits(d))
		binary.LittleEndian.PutUint32(grp[576+4*j:], uint32(12*sum))
	}
}

// q8 rounds v (|v| ≤ 127 up to rounding) half away from zero.
func q8(v float32) byte {
	var q int32
	if v < 0 {
		q = -int32(float64(0.5) - float64(v))
	} else {
		q = int32(float64(v) + 0.5)
	}
	if q > 127 {
		q = 127
	} else if q < -127 {
		q = -127
	}
	return byte(int8(q))
}

// HasVNNI reports whether the AVX-512 int8 kernel can run here (AVX-512
// VNNI and VBMI in a cgo build); the AVX512 level uses it then, and the
// AVX2 int8 kernel otherwise.
func HasVNNI() bool {
	return simdBuilt && cpu.X86.HasAVX512VNNI && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VBMI
}

// Int8Kernel reports whether MatMulMXFP4Q8 runs a SIMD kernel at this
// level (AVX-512 VNNI, or AVX2) rather than the portable Go twin.
// (The AVX512 level's C code assumes AVX2 too.)
func (isa ISA) Int8Kernel() bool { return isa != Generic && simdBuilt }

// q8VNNI reports whether the level's int8 kernel is the AVX-512 VNNI one.
func (isa ISA) q8VNNI() bool { return isa == AVX512 && HasVNNI() }

// MatMulMXFP4Q8 sets dst[t·rows+o] = Σ_c W[o][c]·x[t][c] + bias[o] for
// outputs o in [lo, hi) and the n rows of x, given quantised (QuantizeQ8,
// n rows of Q8Bytes(cols) each in xq); W in MXFP4 as for MatMulMXFP4; bias
// may be nil. Every level and every n gives the same bits: the block sums
// are exact integers and the float epilogue has one fixed order.
func (isa ISA) MatMulMXFP4Q8(dst []float32, xq []byte, n int, blocks, scales []byte, rows, cols int, bias []float32, lo, hi int) {
	checkRange("MatMulMXFP4Q8", q8OK(dst, xq, n, blocks, scales, rows, cols, bias), lo, hi, rows)
	if lo == hi || n == 0 {
		return
	}
	if isa.Int8Kernel() {
		simdMatMulMXFP4Q8(isa.q8VNNI(), dst, xq, n, blocks, scales, rows, cols, bias, lo, hi)
		return
	}
	matMulMXFP4Q8Rows(dst, xq, n, blocks, scales, rows, cols, bias, lo, hi)
}

func q8OK(dst []float32, xq []byte, n int, blocks, scales []byte, rows, cols int, bias []float32) bool {
	groups := cols / mxfp4.BlockSize
	return cols > 0 && cols%mxfp4.BlockSize == 0 && n >= 0 && len(dst) >= n*rows && len(xq) >= n*Q8Bytes(cols) &&
		len(blocks) >= rows*groups*mxfp4.BlockBytes && len(scales) >= rows*groups && (bias == nil || len(bias) >= rows)
}

// q8Unsigned is 2·E2M1 + 12 of each code: the codes as the kernels'
// unsigned operand.
var q8Unsigned = [16]int32{12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0}

// matMulMXFP4Q8Rows is the portable twin of the AVX-512 VNNI kernel: the
// same 16 lanes per group (lane j: block j), the same float operations in
// the same order, each rounded to float32.
func matMulMXFP4Q8Rows(dst []float32, xq []byte, n int, blocks, scales []byte, rows, cols int, bias []float32, lo, hi int) {
	nblocks := cols / mxfp4.BlockSize
	qb := Q8Bytes(cols)
	for t := range n {
		xrow := xq[t*qb : (t+1)*qb]
		for o := lo; o < hi; o++ {
			var acc [16]float32
			for g := 0; g*q8GroupBlocks < nblocks; g++ {
				grp := xrow[g*q8GroupBytes:]
				for j := range min(q8GroupBlocks, nblocks-g*q8GroupBlocks) {
					b := g*q8GroupBlocks + j
					codes := blocks[(o*nblocks+b)*mxfp4.BlockBytes:]
					var sum int32
					for v := range 8 {
						for i := range 4 {
							c := q8Column(v, i)
							code := codes[c/2] >> (4 * (c % 2)) & 0x0F
							sum += q8Unsigned[code] * int32(int8(grp[v*64+j*4+i]))
						}
					}
					sum -= int32(binary.LittleEndian.Uint32(grp[576+4*j:]))
					d := math.Float32frombits(binary.LittleEndian.Uint32(grp[512+4*j:]))
					s := float32(d * (mxfp4.Scale(scales[o*nblocks+b]) * 0.5))
					acc[j] = float32(acc[j] + float32(float32(sum)*s))
				}
			}
			var b8 [8]float32
			for j := range 8 {
				b8[j] = acc[j] + acc[j+8]
			}
			var c4 [4]float32
			for j := range 4 {
				c4[j] = b8[j] + b8[j+4]
			}
			r := (c4[0] + c4[2]) + (c4[1] + c4[3])
			if bias != nil {
				r += bias[o]
			}
			dst[t*rows+o] = r
		}
	}
}
