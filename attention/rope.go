// Package attention holds the attention math of gpt-oss on the CPU: YaRN
// rotary embeddings, the per-sequence KV cache with sliding layers kept in
// a ring, and softmax attention with a learned per-head sink.
package attention

import (
	"fmt"
	"math"
)

// RoPE is the YaRN-scaled rotary embedding of spec §5 step 2c for one head
// size. It is read-only after construction and safe for concurrent use.
type RoPE struct {
	headDim int
	inv     []float64 // inverse frequency per rotated pair, YaRN-blended
	conc    float64   // attention concentration, folded into cos and sin
}

// YaRNParams are the rope_scaling numbers of config.json.
type YaRNParams struct {
	Theta       float64 // rope_theta (150000)
	Factor      float64 // 32; ≤ 1 disables YaRN
	BetaFast    float64 // 32: sets the end of the unscaled band
	BetaSlow    float64 // 1: sets the start of the fully scaled band
	OriginalCtx int     // 4096
}

// NewYaRN builds the rotary table for heads of headDim dimensions.
func NewYaRN(headDim int, p YaRNParams) (*RoPE, error) {
	if headDim <= 0 || headDim%2 != 0 {
		return nil, fmt.Errorf("attention: rope: head_dim %d must be positive and even", headDim)
	}
	if p.Theta <= 1 {
		return nil, fmt.Errorf("attention: rope: rope_theta %g must be > 1", p.Theta)
	}
	half := headDim / 2
	r := &RoPE{headDim: headDim, inv: make([]float64, half), conc: 1}
	if p.Factor <= 1 {
		for i := range half {
			r.inv[i] = 1 / math.Pow(p.Theta, float64(2*i)/float64(headDim))
		}
		return r, nil
	}
	if p.OriginalCtx <= 0 || p.BetaFast <= 0 || p.BetaSlow <= 0 {
		return nil, fmt.Errorf("attention: rope: YaRN needs positive original context and betas, got %+v", p)
	}
	// The band edges are the pair indices whose wavelength spans BetaFast
	// and BetaSlow turns over the original context.
	edge := func(beta float64) float64 {
		return float64(half) * math.Log(float64(p.OriginalCtx)/(beta*2*math.Pi)) / math.Log(p.Theta)
	}
	low, high := edge(p.BetaFast), edge(p.BetaSlow)
	if !(low < high) {
		return nil, fmt.Errorf("attention: rope: YaRN band [%g, %g] is empty", low, high)
	}
	for i := range half {
		freq := math.Pow(p.Theta, float64(2*i)/float64(headDim))
		ramp := math.Min(math.Max((float64(i)-low)/(high-low), 0), 1)
		r.inv[i] = (1-ramp)/freq + ramp/(p.Factor*freq)
	}
	r.conc = 0.1*math.Log(p.Factor) + 1
	return r, nil
}

// HeadDim is the rotated head size.
func (r *RoPE) HeadDim() int { return r.headDim }

// CosSin fills cos and sin (headDim/2 each) for position pos, with the YaRN
// concentration folded in.
func (r *RoPE) CosSin(pos int, cos, sin []float32) {
	for i, f := range r.inv {
		s, c := math.Sincos(float64(pos) * f)
		cos[i] = float32(c * r.conc)
		sin[i] = float32(s * r.conc)
	}
}

// Rotate applies the rotation to each of the heads laid out back to back in
// x, pairing element i with element i+headDim/2 (NeoX half-split).
func Rotate(x []float32, heads, headDim int, cos, sin []float32) {
	half := headDim / 2
	for h := range heads {
		a := x[h*headDim : h*headDim+half]
		b := x[h*headDim+half : (h+1)*headDim]
		for i := range half {
			ai, bi := a[i], b[i]
			a[i] = ai*cos[i] - bi*sin[i]
			b[i] = bi*cos[i] + ai*sin[i]
		}
	}
}
