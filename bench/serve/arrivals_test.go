package serve

import (
	"math"
	"slices"
	"testing"
)

func gaps(t *testing.T, n int, rate, burst float64, seed uint64) []float64 {
	t.Helper()
	s, err := ArrivalSchedule(n, rate, burst, seed)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, n-1)
	for i := 1; i < n; i++ {
		out[i-1] = (s[i] - s[i-1]).Seconds()
	}
	return out
}

func meanCV(xs []float64) (mean, cv float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss/float64(len(xs))) / mean
}

func TestArrivalScheduleStatistics(t *testing.T) {
	const n, rate = 20000, 50.0
	// Gamma(k) gaps have mean 1/rate and coefficient of variation 1/√k:
	// Poisson (k=1) has CV 1, burstier traffic more, steadier less.
	for _, burst := range []float64{1, 0.25, 4} {
		mean, cv := meanCV(gaps(t, n, rate, burst, 42))
		if math.Abs(mean*rate-1) > 0.04 {
			t.Errorf("burstiness %v: mean gap %v, want %v", burst, mean, 1/rate)
		}
		if want := 1 / math.Sqrt(burst); math.Abs(cv/want-1) > 0.06 {
			t.Errorf("burstiness %v: gap CV %.3f, want %.3f", burst, cv, want)
		}
	}
	// Poisson gaps are exponential: P(gap > mean) = 1/e.
	g := gaps(t, n, rate, 1, 3)
	over := 0
	for _, x := range g {
		if x > 1/rate {
			over++
		}
	}
	if frac := float64(over) / float64(len(g)); math.Abs(frac-1/math.E) > 0.02 {
		t.Errorf("fraction of gaps above the mean %.3f, want %.3f", frac, 1/math.E)
	}
}

func TestArrivalScheduleDeterministic(t *testing.T) {
	a, _ := ArrivalSchedule(100, 10, 1, 7)
	b, _ := ArrivalSchedule(100, 10, 1, 7)
	c, _ := ArrivalSchedule(100, 10, 1, 8)
	if !slices.Equal(a, b) {
		t.Error("same seed, different schedules")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds, same schedule")
	}
	if a[0] != 0 || !slices.IsSorted(a) {
		t.Errorf("schedule must start at 0 and never go back: %v", a[:5])
	}
}

func TestArrivalScheduleAllAtOnce(t *testing.T) {
	for _, rate := range []float64{math.Inf(1), 0} {
		s, err := ArrivalSchedule(5, rate, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range s {
			if d != 0 {
				t.Fatalf("rate %v: offsets %v, want all 0", rate, s)
			}
		}
	}
}

func TestArrivalScheduleRejects(t *testing.T) {
	for _, c := range []struct{ rate, burst float64 }{{10, 0}, {10, -1}, {10, math.NaN()}, {math.NaN(), 1}, {10, math.Inf(1)}} {
		if _, err := ArrivalSchedule(3, c.rate, c.burst, 1); err == nil {
			t.Errorf("rate %v burstiness %v: no error", c.rate, c.burst)
		}
	}
	if _, err := ArrivalSchedule(-1, 1, 1, 1); err == nil {
		t.Error("negative count: no error")
	}
}

func TestRunFollowsSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("sleeps")
	}
	// 8 requests at 40/s: the last is sent near its scheduled offset, not
	// at once.
	srv := fakeServer(t, goodStream(2, 0))
	sched, _ := ArrivalSchedule(8, 40, 1, 5)
	res, err := Run(t.Context(), LoadConfig{
		Target: Target{BaseURL: srv}, Prompts: []Prompt{{Text: "x"}}, Requests: 8,
		RequestRate: 40, Burstiness: 1, Seed: 5, Sampling: Sampling{MaxTokens: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res.Requests {
		want := sched[i].Seconds()
		if r.StartS < want-0.001 || r.StartS > want+0.05 {
			t.Errorf("request %d sent at %.3fs, scheduled %.3fs", i, r.StartS, want)
		}
	}
}
