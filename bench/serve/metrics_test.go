package serve

import (
	"math"
	"testing"
	"time"
)

func TestPercentileMatchesNumpy(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 10}
	// numpy.percentile(xs, p) with the default linear method.
	for _, c := range []struct{ p, want float64 }{{0, 1}, {50, 3}, {90, 7.6}, {99, 9.76}, {100, 10}, {25, 2}} {
		if got := Percentile(xs, c.p); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if Percentile(nil, 50) != 0 || Percentile([]float64{7}, 99) != 7 {
		t.Error("empty or single sample")
	}
}

func TestSummarizeCountsAndGoodput(t *testing.T) {
	ok := func(ttft, e2e float64, out int) RequestResult {
		r := RequestResult{OK: true, TTFTS: ttft, E2ES: e2e, OutputTokens: out, PromptTokens: 10}
		if out > 1 {
			r.TPOTS = (e2e - ttft) / float64(out-1)
		}
		return r
	}
	results := []RequestResult{
		ok(0.5, 1.5, 21), // TPOT 50ms: meets ttft=2s,tpot=50ms
		ok(1.0, 3.0, 21), // TPOT 100ms: misses
		ok(2.5, 3.0, 11), // TTFT 2.5s: misses
		ok(0.1, 0.1, 1),  // one token: no TPOT, meets
		{OK: false, Status: 500, Error: "HTTP 500: boom", E2ES: 0.001},
		{OK: false, Error: "stream: ended before data: [DONE]", E2ES: 0.2},
	}
	slo, err := ParseSLO("ttft=2s,tpot=50ms")
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(results, 10*time.Second, slo)
	if s.Requests != 6 || s.Completed != 4 || s.Failed != 2 || s.SuccessRate != 4.0/6 {
		t.Fatalf("counts: %+v", s)
	}
	if s.GoodRequests != 2 || math.Abs(s.Goodput-0.2) > 1e-12 {
		t.Errorf("good %d goodput %v, want 2 and 0.2/s", s.GoodRequests, s.Goodput)
	}
	if s.TotalOutputTokens != 54 || s.TotalInputTokens != 40 || math.Abs(s.OutputThroughput-5.4) > 1e-12 {
		t.Errorf("tokens: %+v", s)
	}
	// The failed requests are not latencies: the 1 ms 500 must not pull
	// the minimum TTFT or E2E down.
	if s.TTFT.Count != 4 || s.E2E.Min != 100 || s.TTFT.Min != 100 {
		t.Errorf("failures leaked into latencies: ttft %+v e2e %+v", s.TTFT, s.E2E)
	}
	if s.TPOT.Count != 3 {
		t.Errorf("TPOT counted %d requests, want the 3 with more than one token", s.TPOT.Count)
	}
	if s.Errors["HTTP 500"] != 1 || s.Errors["stream"] != 1 {
		t.Errorf("error classes %v", s.Errors)
	}
}

func TestParseSLO(t *testing.T) {
	s, err := ParseSLO("ttft=2s, tpot=50ms,e2e=1m")
	if err != nil || s != (SLO{TTFT: 2 * time.Second, TPOT: 50 * time.Millisecond, E2E: time.Minute}) {
		t.Fatalf("got %+v, %v", s, err)
	}
	// vLLM's spelling: milliseconds after a colon.
	s, err = ParseSLO("ttft:2000,tpot:50")
	if err != nil || s.TTFT != 2*time.Second || s.TPOT != 50*time.Millisecond {
		t.Fatalf("vLLM form: got %+v, %v", s, err)
	}
	if s, err := ParseSLO(""); err != nil || !s.IsZero() {
		t.Errorf("empty: %+v %v", s, err)
	}
	for _, bad := range []string{"ttft", "ttft=fast", "latency=2s", "ttft=-1s", "tpot=0"} {
		if _, err := ParseSLO(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
