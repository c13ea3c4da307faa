package mxfp4

import (
	"fmt"
	"math"
)

// BlockSize is the number of elements that share one scale byte.
const BlockSize = 32

// BlockBytes is the number of bytes holding one block's 32 four-bit codes.
const BlockBytes = BlockSize / 2

// e2m1 maps a 4-bit code (bit 3 = sign) to its value. Never written.
var e2m1 = [16]float32{
	0, 0.5, 1, 1.5, 2, 3, 4, 6,
	float32(math.Copysign(0, -1)), -0.5, -1, -1.5, -2, -3, -4, -6,
}

// Value returns the E2M1 value of the low 4 bits of code. Code 8 is −0.
func Value(code uint8) float32 { return e2m1[code&0x0F] }

// Scale returns the E8M0 scale 2^(e−127). Byte 0 gives 2^−127 (a float32
// subnormal, exact). Byte 255 is NaN in the OCP spec, but the gpt-oss
// references just compute 2^(255−127) = 2^128, which overflows float32 to
// +Inf; we do the same, so a block with scale 255 decodes to ±Inf (and its
// zero codes to NaN, 0·Inf).
func Scale(e uint8) float32 {
	if e == 0 {
		return math.Float32frombits(1 << 22) // 2^22 · 2^−149 = 2^−127
	}
	return math.Float32frombits(uint32(e) << 23) // 255 → exponent field all ones = +Inf
}

// DecodeBlock decodes one 16-byte block with scale byte scale into dst[0:32],
// low nibble = even element, high nibble = odd element. Every product is
// exact (an E2M1 value has at most 2 significant bits).
func DecodeBlock(dst []float32, block []byte, scale uint8) {
	_ = dst[BlockSize-1]
	_ = block[BlockBytes-1]
	s := Scale(scale)
	// Per-block table: 16 multiplies instead of 32.
	var t [16]float32
	for i := range t {
		t[i] = e2m1[i] * s
	}
	for j := 0; j < BlockBytes; j++ {
		b := block[j]
		dst[2*j] = t[b&0x0F]
		dst[2*j+1] = t[b>>4]
	}
}

// DecodeRow decodes a row of len(scales) blocks into dst, which must hold
// 32·len(scales) values; blocks must hold 16·len(scales) bytes.
func DecodeRow(dst []float32, blocks []byte, scales []byte) {
	n := len(scales)
	if len(blocks) < n*BlockBytes || len(dst) < n*BlockSize {
		panic(fmt.Sprintf("mxfp4: DecodeRow: %d scales need %d block bytes and %d outputs, have %d and %d",
			n, n*BlockBytes, n*BlockSize, len(blocks), len(dst)))
	}
	for g, s := range scales {
		DecodeBlock(dst[g*BlockSize:(g+1)*BlockSize], blocks[g*BlockBytes:(g+1)*BlockBytes], s)
	}
}

// E8M0 exponent range usable as a finite scale. 255 is reserved (NaN).
const (
	minExp = -127
	maxExp = 127
	// emaxElem is the exponent of E2M1's largest power of two (4 = 2^2).
	emaxElem = 2
)

// NaNScale is the scale byte EncodeBlock returns for a block that contains
// a NaN (E8M0's NaN encoding).
const NaNScale = 0xFF

// EncodeBlock quantises src[0:32] into dst[0:16] by the OCP MX rule and
// returns the scale byte:
//
//   - shared exponent = floor(log2(amax)) − 2 (E2M1 emax = 2), clamped to
//     [−127, 127]; amax = max |x| over the block.
//   - each x/2^exp is rounded to the nearest E2M1 value, ties to the code with
//     an even mantissa bit (so 0.25→0, 0.75→1, 1.25→1, 1.75→2, 2.5→2,
//     3.5→4, 5→4), and magnitudes above 6 saturate to ±6.
//
// Choices where the spec leaves room:
//   - All-zero block (amax 0): log2 is −∞, so the clamp gives exponent −127
//     (scale byte 0) and all codes are zero. The same clamp makes blocks
//     with amax < 2^−125 encode at scale byte 0, where anything below
//     2^−129 rounds to zero.
//   - The sign bit is copied from the input, so −0 and negative values that
//     round to zero give code 8 (−0). Decode→encode is then the identity on
//     codes.
//   - ±Inf counts as larger than any finite value: the exponent clamps to
//     127 (scale byte 254) and ±Inf saturates to ±6 (which decodes to ±Inf
//     in float32, since 6·2^127 overflows).
//   - Any NaN makes the block unrepresentable: the scale byte is 0xFF (E8M0
//     NaN) and all codes are 0, so Decode gives NaN for all 32 elements
//     (0·2^128 = 0·Inf).
func EncodeBlock(dst []byte, src []float32) (scale uint8) {
	_ = dst[BlockBytes-1]
	_ = src[BlockSize-1]
	var amax float64
	for _, x := range src[:BlockSize] {
		a := math.Abs(float64(x))
		if a != a { // NaN
			for j := range dst[:BlockBytes] {
				dst[j] = 0
			}
			return NaNScale
		}
		if a > amax {
			amax = a
		}
	}
	exp := minExp
	if amax > 0 {
		if math.IsInf(amax, 1) {
			exp = maxExp
		} else {
			// Frexp: amax = f·2^e with f in [0.5, 1), so floor(log2) = e−1
			// exactly (math.Log2 can round up just below a power of two).
			_, e := math.Frexp(amax)
			exp = max(minExp, min(maxExp, e-1-emaxElem))
		}
	}
	// 2^−exp as a float64; x·inv is exact for every float32 x (the result
	// stays far inside float64's range).
	inv := math.Float64frombits(uint64(1023-exp) << 52)
	for j := 0; j < BlockBytes; j++ {
		dst[j] = encodeElem(float64(src[2*j])*inv) | encodeElem(float64(src[2*j+1])*inv)<<4
	}
	return uint8(exp + 127)
}

// encodeElem rounds an already scaled value to the nearest E2M1 code, ties
// to even mantissa, saturating at ±6.
func encodeElem(q float64) uint8 {
	var sign uint8
	if math.Signbit(q) {
		sign = 8
		q = -q
	}
	var c uint8
	switch {
	case q <= 0.25:
		c = 0
	case q < 0.75:
		c = 1
	case q <= 1.25:
		c = 2
	case q < 1.75:
		c = 3
	case q <= 2.5:
		c = 4
	case q < 3.5:
		c = 5
	case q <= 5:
		c = 6
	default: // includes +Inf
		c = 7
	}
	return sign | c
}

// EncodeRow encodes src (a multiple of 32 values) into len(src)/32 blocks of
// 16 bytes in blocks and one scale byte per block in scales.
func EncodeRow(blocks, scales []byte, src []float32) {
	if len(src)%BlockSize != 0 {
		panic(fmt.Sprintf("mxfp4: EncodeRow: %d values is not a multiple of %d", len(src), BlockSize))
	}
	n := len(src) / BlockSize
	if len(blocks) < n*BlockBytes || len(scales) < n {
		panic(fmt.Sprintf("mxfp4: EncodeRow: %d values need %d block bytes and %d scales, have %d and %d",
			len(src), n*BlockBytes, n, len(blocks), len(scales)))
	}
	for g := 0; g < n; g++ {
		scales[g] = EncodeBlock(blocks[g*BlockBytes:(g+1)*BlockBytes], src[g*BlockSize:(g+1)*BlockSize])
	}
}
