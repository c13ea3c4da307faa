package kernels

import "math"

// BF16 returns element i of a little-endian BF16 array as float32: BF16 is
// the top half of an IEEE float32, so widening is a shift.
func BF16(b []byte, i int) float32 {
	return math.Float32frombits(uint32(b[2*i])<<16 | uint32(b[2*i+1])<<24)
}

// DecodeBF16 widens len(dst) BF16 values from src to float32.
func DecodeBF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(src[2*i])<<16 | uint32(src[2*i+1])<<24)
	}
}

// MatMulBF16 sets dst[r·out+o] = Σ_i x[r·in+i]·W[o·in+i] + bias[o] for the
// first n rows of x, with W stored [out, in] in BF16 and bias (len out, or
// nil) in float32. Each weight row is widened once and reused for every
// input row, so a batch reads the weights once.
func MatMulBF16(dst, x []float32, n int, w []byte, out, in int, bias []float32, row []float32) {
	row = row[:in]
	for o := range out {
		DecodeBF16(row, w[o*in*2:(o+1)*in*2])
		var b float32
		if bias != nil {
			b = bias[o]
		}
		for r := range n {
			dst[r*out+o] = Dot(row, x[r*in:(r+1)*in]) + b
		}
	}
}

// Dot returns Σ a[i]·b[i] over len(a) elements.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}
