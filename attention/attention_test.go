package attention

import (
	"math"
	"math/rand/v2"
	"testing"
)

func gptossRoPE(t *testing.T) *RoPE {
	t.Helper()
	r, err := NewYaRN(64, YaRNParams{Theta: 150000, Factor: 32, BetaFast: 32, BetaSlow: 1, OriginalCtx: 4096})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The constants of spec §5 step 2c.
func TestYaRNConstants(t *testing.T) {
	r := gptossRoPE(t)
	if math.Abs(r.conc-1.3465735902799727) > 1e-15 {
		t.Errorf("concentration %v", r.conc)
	}
	for i, want := range map[int]float64{0: 1, 1: 6.890443e-1, 31: 3.023511e-7} {
		if math.Abs(r.inv[i]-want) > 1e-6*want {
			t.Errorf("inv_%d = %.7g, want %.7g", i, r.inv[i], want)
		}
	}
	// Dims 0–8 keep the original frequency, 18–31 are slowed 32×.
	for i := range 32 {
		freq := math.Pow(150000, float64(2*i)/64)
		switch {
		case i <= 8 && math.Abs(r.inv[i]*freq-1) > 1e-12:
			t.Errorf("pair %d should be unscaled", i)
		case i >= 18 && math.Abs(r.inv[i]*freq*32-1) > 1e-12:
			t.Errorf("pair %d should be slowed 32×", i)
		}
	}
}

func TestRotateHalfSplit(t *testing.T) {
	r := gptossRoPE(t)
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, 2*64)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	orig := append([]float32(nil), x...)
	cos, sin := make([]float32, 32), make([]float32, 32)
	const pos = 1234
	r.CosSin(pos, cos, sin)
	Rotate(x, 2, 64, cos, sin)
	for h := range 2 {
		for i := range 32 {
			a, b := float64(orig[h*64+i]), float64(orig[h*64+32+i])
			s, c := math.Sincos(pos * r.inv[i])
			c, s = c*r.conc, s*r.conc
			if math.Abs(float64(x[h*64+i])-(a*c-b*s)) > 1e-5 || math.Abs(float64(x[h*64+32+i])-(b*c+a*s)) > 1e-5 {
				t.Fatalf("head %d pair %d rotated wrongly", h, i)
			}
		}
	}
}

func TestNewYaRNRejectsBadInput(t *testing.T) {
	for _, c := range []struct {
		hd int
		p  YaRNParams
	}{
		{63, YaRNParams{Theta: 150000}},
		{64, YaRNParams{Theta: 0}},
		{64, YaRNParams{Theta: 150000, Factor: 32}},
	} {
		if _, err := NewYaRN(c.hd, c.p); err == nil {
			t.Errorf("NewYaRN(%d, %+v) accepted", c.hd, c.p)
		}
	}
}

// SinkHead against float64 code: scores, the sink in the denominator only,
// weights summing below one.
func TestSinkHead(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	const hd, n = 16, 9
	q := make([]float32, hd)
	keys, vals := make([][]float32, n), make([][]float32, n)
	for i := range q {
		q[i] = float32(rng.NormFloat64())
	}
	for u := range n {
		keys[u], vals[u] = make([]float32, hd), make([]float32, hd)
		for i := range hd {
			keys[u][i], vals[u][i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
	}
	for _, sink := range []float32{-20, 0.7, 30} {
		out := make([]float32, hd)
		SinkHead(out, q, keys, vals, sink, 0.25, make([]float32, n))
		s := make([]float64, n)
		m := float64(sink)
		for u := range n {
			for i := range hd {
				s[u] += float64(q[i]) * float64(keys[u][i])
			}
			s[u] *= 0.25
			m = math.Max(m, s[u])
		}
		den := math.Exp(float64(sink) - m)
		for u := range n {
			den += math.Exp(s[u] - m)
		}
		for i := range hd {
			want := 0.0
			for u := range n {
				want += math.Exp(s[u]-m) / den * float64(vals[u][i])
			}
			if math.Abs(float64(out[i])-want) > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("sink %g, dim %d: %g, want %g", sink, i, out[i], want)
			}
		}
	}
}

func TestKeyRange(t *testing.T) {
	cases := []struct {
		pos, window int
		sliding     bool
		lo, hi      int
	}{
		{0, 128, true, 0, 0},
		{127, 128, true, 0, 127},
		{128, 128, true, 1, 128}, // exactly 128 keys including itself
		{500, 128, false, 0, 500},
	}
	for _, c := range cases {
		if lo, hi := KeyRange(c.pos, c.window, c.sliding); lo != c.lo || hi != c.hi {
			t.Errorf("KeyRange(%d, %d, %v) = %d, %d; want %d, %d", c.pos, c.window, c.sliding, lo, hi, c.lo, c.hi)
		}
	}
}

func TestCacheRingAndGrowth(t *testing.T) {
	c, err := NewCache(2, []bool{true, false}, 4, 100)
	if err != nil {
		t.Fatal(err)
	}
	for p := range 10 {
		for l := range 2 {
			if err := c.Store(l, p, []float32{float32(p), 1}, []float32{float32(-p), 2}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for p := 6; p < 10; p++ { // the ring keeps the last 4
		if k := c.Key(0, p); k[0] != float32(p) {
			t.Errorf("sliding layer position %d holds key %v", p, k)
		}
	}
	for p := range 10 {
		if k, v := c.Key(1, p), c.Value(1, p); k[0] != float32(p) || v[0] != float32(-p) {
			t.Errorf("full layer position %d holds %v, %v", p, k, v)
		}
	}
	if got := c.Bytes(); got < 2*4*2*4 {
		t.Errorf("Bytes() = %d", got)
	}
	if err := c.Store(1, 100, nil, nil); err == nil {
		t.Error("store past MaxLen accepted")
	}
	if err := c.SetLen(101); err == nil {
		t.Error("SetLen past MaxLen accepted")
	}
}
