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
//     with amax < 2^−124 encode at scale byte 0, where anything at or below
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
	// amax via the magnitude bits: for non-NaN floats their integer order is
	// the order of |x|, and anything above +Inf's bits is a NaN.
	var amaxBits uint32
	for _, x := range src[:BlockSize] {
		amaxBits = max(amaxBits, math.Float32bits(x)&0x7FFFFFFF)
	}
	if amaxBits > 0x7F800000 { // NaN
		clear(dst[:BlockBytes])
		return NaNScale
	}
	exp := minExp
	switch e := int(amaxBits >> 23); {
	case amaxBits == 0x7F800000: // ±Inf
		exp = maxExp
	case e > 0:
		// A normal float32 is 1.m·2^(e−127), so floor(log2|x|) = e−127
		// exactly (what math.Frexp gives; math.Log2 can round up just below
		// a power of two). Subnormals and 0 (e = 0) are below 2^−126 and
		// clamp to −127 like the smallest normals.
		exp = max(minExp, e-127-emaxElem)
	}
	// 2^−exp as a float64; x·inv is exact for every float32 x, and below 8
	// for every finite x in the block.
	inv := math.Float64frombits(uint64(1023-exp) << 52)
	if exp == maxExp {
		for j := 0; j < BlockBytes; j++ {
			dst[j] = encodeElem(float64(src[2*j])*inv) | encodeElem(float64(src[2*j+1])*inv)<<4
		}
	} else {
		for j := 0; j < BlockBytes; j++ {
			dst[j] = roundElem(float64(src[2*j])*inv) | roundElem(float64(src[2*j+1])*inv)<<4
		}
	}
	return uint8(exp + 127)
}

// codeOf2r maps 2r, for r an E2M1 magnitude or 8 (which saturates), to its
// code. Never written.
var codeOf2r = [17]uint8{0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 6: 5, 8: 6, 12: 7, 16: 7}

// roundElem is encodeElem without branches on the data (Gaussian weights
// make a comparison chain mispredict constantly), for finite |q| < 8.
// Adding and subtracting M = step·2^52 rounds q to a multiple of the E2M1
// step of q's binade (0.5 below 2, 1 in [2, 4), 2 in [4, 8)) by the FPU's
// round-to-nearest-even, and the even multiple is exactly the code with an
// even mantissa bit. 8 (from [7, 8)) saturates to 6 through the table.
func roundElem(q float64) uint8 {
	b := math.Float64bits(q)
	sign := uint8(b>>63) << 3
	b &^= 1 << 63
	m := math.Float64frombits((max(b>>52, 1023) + 51) << 52)
	a := math.Float64frombits(b)
	r := (a + m) - m
	return sign | codeOf2r[int(r*2)]
}

// encodeElem rounds an already scaled value to the nearest E2M1 code, ties
// to even mantissa, saturating at ±6 (±Inf included). The plain statement
// of the rule; roundElem is the fast equivalent for the finite case.
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
