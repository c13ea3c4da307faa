package kernels

import (
	"encoding/binary"
	"math"

	"github.com/gptoss/gptoss/mxfp4"
	"golang.org/x/sys/cpu"
)

// The int8-activation MXFP4 product (llama.cpp's approach), an opt-in
// alternative to the float32 kernels for decode: the activations are
// quantised per 32-column block to int8 with one float32 scale
// (absmax/127), the E2M1 codes doubled are exact integers in [-12, 12], so
// each block's dot product is an exact integer sum; the float epilogue is
// sum × x_scale × w_scale / 2, accumulated in float32.
//
// A quantised row (Q8Bytes(cols) bytes) holds the int8 values, then one
// little-endian float32 scale per block. The values are in the order the
// kernel reads the codes: per chunk of 4 blocks (the last chunk of a row
// may have nb < 4), first the even columns (block b's column 2j at b·16+j),
// then the odd ones (at 16·nb + b·16 + j), so the low and the high nibbles
// of the chunk's code bytes each meet their activations in one vector.

// Q8Bytes is the length of one quantised row of cols (a multiple of 32).
func Q8Bytes(cols int) int { return cols + cols/mxfp4.BlockSize*4 }

// QuantizeQ8 quantises one row x of cols into dst (Q8Bytes(cols) bytes):
// per block q = round(x / d), d = max|x| / 127 (q = 0 where d = 0).
func QuantizeQ8(dst []byte, x []float32, cols int) {
	groups := cols / mxfp4.BlockSize
	dst, x = dst[:Q8Bytes(cols)], x[:cols]
	for g := range groups {
		xb := x[g*mxfp4.BlockSize : (g+1)*mxfp4.BlockSize]
		var m0, m1 uint32 // max |x| as bits: ordered like the floats
		for j := 0; j < len(xb); j += 2 {
			m0 = max(m0, math.Float32bits(xb[j])&0x7FFFFFFF)
			m1 = max(m1, math.Float32bits(xb[j+1])&0x7FFFFFFF)
		}
		d := math.Float32frombits(max(m0, m1)) / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		chunk := g / 4 * 4
		lanes := 16 * min(4, groups-chunk)
		q := dst[chunk*mxfp4.BlockSize+(g-chunk)*16:]
		qe, qo := q[:16:16], q[lanes:lanes+16:lanes+16]
		for j := range 16 {
			qe[j] = q8(xb[2*j] * id)
			qo[j] = q8(xb[2*j+1] * id)
		}
		binary.LittleEndian.PutUint32(dst[cols+4*g:], math.Float32bits(d))
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
// VNNI in a cgo build); otherwise MatVecMXFP4Q8 uses the Go code.
func HasVNNI() bool { return simdBuilt && cpu.X86.HasAVX512VNNI && cpu.X86.HasAVX512BW }

// MatVecMXFP4Q8 sets dst[o] = Σ_c W[o][c]·x[c] + bias[o] for outputs o in
// [lo, hi), x given quantised (QuantizeQ8, xq) and W in MXFP4 as for
// MatMulMXFP4; bias may be nil. Every level gives the same bits: the block
// sums are exact integers and the float epilogue has one fixed order.
func (isa ISA) MatVecMXFP4Q8(dst []float32, xq []byte, blocks, scales []byte, rows, cols int, bias []float32, lo, hi int) {
	checkRange("MatVecMXFP4Q8", q8OK(dst, xq, blocks, scales, rows, cols, bias), lo, hi, rows)
	if lo == hi {
		return
	}
	if isa == AVX512 && HasVNNI() {
		simdMatVecMXFP4Q8(dst, xq, blocks, scales, rows, cols, bias, lo, hi)
		return
	}
	matVecMXFP4Q8Rows(dst, xq, blocks, scales, rows, cols, bias, lo, hi)
}

func q8OK(dst []float32, xq []byte, blocks, scales []byte, rows, cols int, bias []float32) bool {
	groups := cols / mxfp4.BlockSize
	return cols > 0 && cols%mxfp4.BlockSize == 0 && len(dst) >= rows && len(xq) >= Q8Bytes(cols) &&
		len(blocks) >= rows*groups*mxfp4.BlockBytes && len(scales) >= rows*groups && (bias == nil || len(bias) >= rows)
}

// q8Abs is |2·E2M1| of each code; bit 3 of a code is its sign.
var q8Abs = [16]int32{0, 1, 2, 3, 4, 6, 8, 12, 0, 1, 2, 3, 4, 6, 8, 12}

// matVecMXFP4Q8Rows is the portable twin of the AVX-512 VNNI kernel: the
// same 16 lanes per chunk (lane i: 4 even and 4 odd columns of block i/4),
// the same float operations in the same order, each rounded to float32.
func matVecMXFP4Q8Rows(dst []float32, xq []byte, blocks, scales []byte, rows, cols int, bias []float32, lo, hi int) {
	groups := cols / mxfp4.BlockSize
	for o := lo; o < hi; o++ {
		var acc [16]float32
		for g := 0; g < groups; g += 4 {
			nb := min(4, groups-g)
			lanes := 16 * nb
			x := xq[g*mxfp4.BlockSize:]
			codes := blocks[(o*groups+g)*mxfp4.BlockBytes:]
			for i := range 16 {
				var sum int32
				var s float32 // x_scale · w_scale / 2 (0 past the tail)
				if b := i / 4; b < nb {
					for j := 4 * i; j < 4*i+4; j++ {
						c := codes[j]
						sum += q8Mul(c&0x0F, x[j]) + q8Mul(c>>4, x[lanes+j])
					}
					xs := math.Float32frombits(binary.LittleEndian.Uint32(xq[cols+4*(g+b):]))
					s = xs * (mxfp4.Scale(scales[o*groups+g+b]) * 0.5)
				}
				acc[i] += float32(float32(sum) * s)
			}
		}
		var r float32
		{
			var b8 [8]float32
			for j := range 8 {
				b8[j] = acc[j] + acc[j+8]
			}
			var c4 [4]float32
			for j := range 4 {
				c4[j] = b8[j] + b8[j+4]
			}
			r = (c4[0] + c4[2]) + (c4[1] + c4[3])
		}
		if bias != nil {
			r += bias[o]
		}
		dst[o] = r
	}
}

func q8Mul(code byte, x byte) int32 {
	v := q8Abs[code] * int32(int8(x))
	if code&8 != 0 {
		return -v
	}
	return v
}
