package serve

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// ArrivalSchedule returns when each of n requests is sent, as offsets from
// the start of the run. rate is the mean request rate (requests/s); +Inf or
// a value ≤ 0 sends everything at once. Inter-arrival gaps are gamma
// distributed with shape burstiness and mean 1/rate, as in vLLM's
// benchmark_serving: burstiness 1 is a Poisson process, below 1 burstier,
// above 1 more regular. The same seed gives the same schedule.
func ArrivalSchedule(n int, rate, burstiness float64, seed uint64) ([]time.Duration, error) {
	if n < 0 {
		return nil, fmt.Errorf("arrival schedule: negative request count %d", n)
	}
	out := make([]time.Duration, n)
	if rate <= 0 || math.IsInf(rate, 1) {
		return out, nil
	}
	if math.IsNaN(rate) {
		return nil, fmt.Errorf("arrival schedule: request rate is NaN")
	}
	if !(burstiness > 0) || math.IsInf(burstiness, 0) {
		return nil, fmt.Errorf("arrival schedule: burstiness must be a positive number, got %v", burstiness)
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	scale := 1 / (rate * burstiness) // mean of Gamma(k, θ) is kθ = 1/rate
	var t float64
	for i := range out {
		// The first request goes at once, as vLLM's does not wait either.
		if i > 0 {
			t += gamma(rng, burstiness) * scale
		}
		out[i] = time.Duration(t * float64(time.Second))
	}
	return out, nil
}

// gamma draws from Gamma(shape, 1) by Marsaglia and Tsang's method; shapes
// below 1 use the boost Gamma(a) = Gamma(a+1)·U^(1/a).
func gamma(rng *rand.Rand, shape float64) float64 {
	if shape < 1 {
		u := rng.Float64()
		for u == 0 {
			u = rng.Float64()
		}
		return gamma(rng, shape+1) * math.Pow(u, 1/shape)
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
