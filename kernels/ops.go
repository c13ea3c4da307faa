package kernels

import "math"

// RMSNorm sets dst = x / sqrt(mean(x²) + eps) · gain. The sum of squares is
// taken in float64 so that very small rows keep full precision.
func RMSNorm(dst, x, gain []float32, eps float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	inv := float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
	for i, v := range x {
		dst[i] = v * inv * gain[i]
	}
}

// SwiGLU computes the clamped SwiGLU of gpt-oss from gate/up rows stored
// interleaved (gate at even, up at odd indices): the gate is clamped from
// above only, the up projection on both sides, and act = g·σ(αg)·(u+1).
func SwiGLU(act, gateUp []float32, alpha, limit float32) {
	for i := range act {
		g := min(gateUp[2*i], limit)
		u := min(max(gateUp[2*i+1], -limit), limit)
		act[i] = g / (1 + float32(math.Exp(float64(-alpha*g)))) * (u + 1)
	}
}

// TopK writes the indices of the k largest logits in descending order
// (the lower index first on ties) to idx, and the softmax over those k
// logits to w. It selects by k passes, which for k = 4 beats sorting.
func TopK(idx []int32, w []float32, logits []float32, k int) {
	for j := range k {
		best := -1
		for e, v := range logits {
			if best >= 0 && v <= logits[best] || chosen(idx[:j], e) {
				continue
			}
			best = e
		}
		idx[j] = int32(best)
	}
	m := logits[idx[0]]
	var sum float64
	for j := range k {
		e := math.Exp(float64(logits[idx[j]] - m))
		w[j] = float32(e)
		sum += e
	}
	for j := range k {
		w[j] = float32(float64(w[j]) / sum)
	}
}

func chosen(idx []int32, e int) bool {
	for _, i := range idx {
		if int(i) == e {
			return true
		}
	}
	return false
}
