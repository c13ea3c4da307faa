package attention

import "math"

// SinkHead computes one query head's attention output (spec §5 steps 2d,
// 2e): scores s_u = scale·q·k_u over the given keys, a softmax whose
// denominator also holds exp(sink) (the sink has no value vector, so the
// weights sum to less than one), and out = Σ_u w_u v_u. scores must hold
// len(keys) floats; it is scratch space.
func SinkHead(out, q []float32, keys, values [][]float32, sink, scale float32, scores []float32) {
	m := sink
	for u, k := range keys {
		var dot float32
		for i, qi := range q {
			dot += qi * k[i]
		}
		s := dot * scale
		scores[u] = s
		m = max(m, s)
	}
	denom := math.Exp(float64(sink - m))
	for u := range keys {
		e := math.Exp(float64(scores[u] - m))
		scores[u] = float32(e)
		denom += e
	}
	clear(out)
	inv := float32(1 / denom)
	for u, v := range values {
		w := scores[u] * inv
		for i, vi := range v {
			out[i] += w * vi
		}
	}
}

// KeyRange is the span of key positions [lo, hi] a query at position pos
// may attend to: itself and everything before it, or on a sliding layer the
// last window positions including itself.
func KeyRange(pos, window int, sliding bool) (lo, hi int) {
	if sliding {
		return max(0, pos-window+1), pos
	}
	return 0, pos
}
