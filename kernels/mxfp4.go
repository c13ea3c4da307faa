package kernels

import "github.com/gptoss/gptoss/mxfp4"

// MatVecMXFP4 sets dst[o] = Σ_c W[o][c]·x[c] + bias[o] for an MXFP4 matrix of
// rows × cols stored as blocks [rows][cols/32][16] and scales [rows][cols/32]
// (checkpoint nibble order: low nibble = even column). bias may be nil.
// The matrix is decoded block by block on the fly and never expanded.
func MatVecMXFP4(dst, x []float32, blocks, scales []byte, rows, cols int, bias []float32) {
	groups := cols / mxfp4.BlockSize
	var lut [16]float32
	for c := range lut {
		lut[c] = mxfp4.Value(uint8(c))
	}
	x = x[:cols]
	for o := range rows {
		var acc float32
		bs := blocks[o*groups*mxfp4.BlockBytes : (o+1)*groups*mxfp4.BlockBytes]
		for g := range groups {
			xs := x[g*mxfp4.BlockSize : (g+1)*mxfp4.BlockSize]
			blk := bs[g*mxfp4.BlockBytes : (g+1)*mxfp4.BlockBytes]
			var s0, s1 float32
			for j, b := range blk {
				s0 += lut[b&0x0F] * xs[2*j]
				s1 += lut[b>>4] * xs[2*j+1]
			}
			acc += (s0 + s1) * mxfp4.Scale(scales[o*groups+g])
		}
		if bias != nil {
			acc += bias[o]
		}
		dst[o] = acc
	}
}
