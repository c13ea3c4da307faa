package serve

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RequestResult is what one request measured. Times are seconds.
type RequestResult struct {
	Index    int    `json:"index"`
	Category string `json:"category,omitempty"`
	OK       bool   `json:"ok"`
	Error    string `json:"error,omitempty"`
	Status   int    `json:"status,omitempty"` // HTTP status, when one arrived
	// StartS is when the request was sent, from the start of the run.
	StartS float64 `json:"start_s"`
	// PromptTokens and OutputTokens are the server's usage when it reports
	// one, else counted with the o200k_harmony tokenizer.
	PromptTokens int `json:"prompt_tokens"`
	OutputTokens int `json:"output_tokens"`
	// CountedOutputTokens is the streamed text re-encoded with our
	// tokenizer (chat servers do not stream harmony's header tokens, so it
	// can be below the usage count).
	CountedOutputTokens int    `json:"counted_output_tokens"`
	UsageReported       bool   `json:"usage_reported"`
	FinishReason        string `json:"finish_reason,omitempty"`
	// TTFTS is the time to the first chunk carrying text; TPOTS the mean
	// time per output token after the first; ITLS the gaps between chunks.
	TTFTS float64   `json:"ttft_s"`
	TPOTS float64   `json:"tpot_s"`
	E2ES  float64   `json:"e2e_s"`
	ITLS  []float64 `json:"itl_s,omitempty"`
	// Chunks is how many stream chunks carried text: one per token on
	// most servers, fewer when a server buffers (see Summary.Warnings).
	Chunks int `json:"chunks"`
}

// DecodeTokensPerSecond is one request's generation speed after its first
// token, or 0 when it produced fewer than two.
func (r RequestResult) DecodeTokensPerSecond() float64 {
	if r.OutputTokens < 2 || r.E2ES <= r.TTFTS {
		return 0
	}
	return float64(r.OutputTokens-1) / (r.E2ES - r.TTFTS)
}

// Distribution summarises a latency sample, in milliseconds.
type Distribution struct {
	Count  int     `json:"count"`
	Mean   float64 `json:"mean_ms"`
	Median float64 `json:"median_ms"`
	P90    float64 `json:"p90_ms"`
	P99    float64 `json:"p99_ms"`
	Min    float64 `json:"min_ms"`
	Max    float64 `json:"max_ms"`
	Std    float64 `json:"std_ms"`
}

// Percentile interpolates linearly between closest ranks (numpy's
// default, which vLLM's numbers use). sorted must be ascending; an empty
// sample gives 0.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	pos := p / 100 * float64(n-1)
	lo := int(math.Floor(pos))
	if lo+1 >= n {
		return sorted[n-1]
	}
	frac := pos - float64(lo)
	return sorted[lo] + frac*(sorted[lo+1]-sorted[lo])
}

// distributionOf summarises seconds as milliseconds.
func distributionOf(seconds []float64) Distribution {
	if len(seconds) == 0 {
		return Distribution{}
	}
	ms := make([]float64, len(seconds))
	var sum float64
	for i, s := range seconds {
		ms[i] = s * 1000
		sum += ms[i]
	}
	slices.Sort(ms)
	mean := sum / float64(len(ms))
	var ss float64
	for _, v := range ms {
		ss += (v - mean) * (v - mean)
	}
	return Distribution{
		Count: len(ms), Mean: mean, Median: Percentile(ms, 50), P90: Percentile(ms, 90), P99: Percentile(ms, 99),
		Min: ms[0], Max: ms[len(ms)-1], Std: math.Sqrt(ss / float64(len(ms))),
	}
}

// SLO is a service-level objective per request; a zero bound is not
// checked. A request is "good" when it succeeded and meets every bound.
type SLO struct {
	TTFT time.Duration `json:"ttft,omitempty"`
	TPOT time.Duration `json:"tpot,omitempty"`
	E2E  time.Duration `json:"e2e,omitempty"`
}

// IsZero reports whether no bound is set.
func (s SLO) IsZero() bool { return s == SLO{} }

func (s SLO) String() string {
	var parts []string
	if s.TTFT > 0 {
		parts = append(parts, "ttft="+s.TTFT.String())
	}
	if s.TPOT > 0 {
		parts = append(parts, "tpot="+s.TPOT.String())
	}
	if s.E2E > 0 {
		parts = append(parts, "e2e="+s.E2E.String())
	}
	return strings.Join(parts, ",")
}

// Met reports whether a request meets the objective.
func (s SLO) Met(r RequestResult) bool {
	if !r.OK {
		return false
	}
	within := func(got float64, bound time.Duration) bool {
		return bound <= 0 || got <= bound.Seconds()
	}
	return within(r.TTFTS, s.TTFT) && within(r.TPOTS, s.TPOT) && within(r.E2ES, s.E2E)
}

// ParseSLO reads "ttft=2s,tpot=50ms[,e2e=30s]". A bare number is
// milliseconds and ':' may stand for '=', so vLLM's "ttft:2000" works too.
func ParseSLO(text string) (SLO, error) {
	var s SLO
	text = strings.TrimSpace(text)
	if text == "" {
		return s, nil
	}
	for _, part := range strings.Split(text, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			key, val, ok = strings.Cut(strings.TrimSpace(part), ":")
		}
		if !ok {
			return s, fmt.Errorf("slo %q: want key=duration, e.g. ttft=2s", part)
		}
		d, err := parseLatency(strings.TrimSpace(val))
		if err != nil {
			return s, fmt.Errorf("slo %q: %w", part, err)
		}
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "ttft":
			s.TTFT = d
		case "tpot":
			s.TPOT = d
		case "e2e", "e2el":
			s.E2E = d
		default:
			return s, fmt.Errorf("slo %q: unknown metric %q (have ttft, tpot, e2e)", part, key)
		}
	}
	return s, nil
}

func parseLatency(v string) (time.Duration, error) {
	if ms, err := strconv.ParseFloat(v, 64); err == nil {
		if !(ms > 0) || math.IsInf(ms, 0) {
			return 0, fmt.Errorf("latency must be positive, got %v", v)
		}
		return time.Duration(ms * float64(time.Millisecond)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("not a duration: %q", v)
	}
	if d <= 0 {
		return 0, fmt.Errorf("latency must be positive, got %v", v)
	}
	return d, nil
}

// Summary aggregates one run.
type Summary struct {
	Requests    int     `json:"requests"`
	Completed   int     `json:"completed"`
	Failed      int     `json:"failed"`
	SuccessRate float64 `json:"success_rate"`
	// DurationS is the wall time from the first send to the last answer.
	DurationS         float64        `json:"duration_s"`
	TotalInputTokens  int            `json:"total_input_tokens"`
	TotalOutputTokens int            `json:"total_output_tokens"`
	RequestThroughput float64        `json:"request_throughput"`      // completed requests/s
	OutputThroughput  float64        `json:"output_throughput"`       // output tokens/s
	TotalThroughput   float64        `json:"total_token_throughput"`  // input+output tokens/s
	MeanDecodeRate    float64        `json:"mean_decode_tok_per_s"`   // mean per-request tokens/s after the first
	MaxConcurrency    int            `json:"max_concurrent_requests"` // most requests in flight at once
	TTFT              Distribution   `json:"ttft"`
	TPOT              Distribution   `json:"tpot"`
	ITL               Distribution   `json:"itl"`
	E2E               Distribution   `json:"e2e"`
	SLO               string         `json:"slo,omitempty"`
	GoodRequests      int            `json:"good_requests"`
	Goodput           float64        `json:"goodput"` // good requests/s
	Errors            map[string]int `json:"errors,omitempty"`
	// Warnings say when a number above should not be trusted.
	Warnings []string `json:"warnings,omitempty"`
}

// Summarize computes a run's summary. Failed requests count in the
// success rate and nowhere else: a 500 answered in a millisecond must not
// pass for a fast response.
func Summarize(results []RequestResult, duration time.Duration, slo SLO) Summary {
	s := Summary{Requests: len(results), DurationS: duration.Seconds(), SLO: slo.String()}
	var ttft, tpot, itl, e2e []float64
	var decodeSum float64
	var decodeN, chunks int
	for _, r := range results {
		if !r.OK {
			s.Failed++
			if s.Errors == nil {
				s.Errors = map[string]int{}
			}
			s.Errors[errorClass(r)]++
			continue
		}
		s.Completed++
		s.TotalInputTokens += r.PromptTokens
		s.TotalOutputTokens += r.OutputTokens
		ttft = append(ttft, r.TTFTS)
		e2e = append(e2e, r.E2ES)
		if r.OutputTokens > 1 {
			tpot = append(tpot, r.TPOTS)
		}
		itl = append(itl, r.ITLS...)
		chunks += r.Chunks
		if v := r.DecodeTokensPerSecond(); v > 0 {
			decodeSum += v
			decodeN++
		}
		if !slo.IsZero() && slo.Met(r) {
			s.GoodRequests++
		}
	}
	if s.Requests > 0 {
		s.SuccessRate = float64(s.Completed) / float64(s.Requests)
	}
	if d := duration.Seconds(); d > 0 {
		s.RequestThroughput = float64(s.Completed) / d
		s.OutputThroughput = float64(s.TotalOutputTokens) / d
		s.TotalThroughput = float64(s.TotalInputTokens+s.TotalOutputTokens) / d
		s.Goodput = float64(s.GoodRequests) / d
	}
	if decodeN > 0 {
		s.MeanDecodeRate = decodeSum / float64(decodeN)
	}
	s.TTFT, s.TPOT, s.ITL, s.E2E = distributionOf(ttft), distributionOf(tpot), distributionOf(itl), distributionOf(e2e)
	s.MaxConcurrency = maxOverlap(results)
	if s.TotalOutputTokens > 0 && 2*chunks < s.TotalOutputTokens {
		s.Warnings = append(s.Warnings, fmt.Sprintf(
			"the server streamed %d text chunks for %d output tokens: it buffers output (a chat endpoint holds harmony headers back, and a model with random weights may never open a channel), so TTFT, TPOT and ITL describe chunks, not tokens; the completions endpoint streams every token",
			chunks, s.TotalOutputTokens))
	}
	return s
}

// errorClass groups failures for the summary: the HTTP status when there
// was one, else the error text up to its first colon.
func errorClass(r RequestResult) string {
	if r.Status != 0 && r.Status != 200 {
		return "HTTP " + strconv.Itoa(r.Status)
	}
	msg, _, _ := strings.Cut(r.Error, ":")
	if msg == "" {
		msg = "unknown"
	}
	return msg
}

// maxOverlap is the most requests in flight at any moment.
func maxOverlap(results []RequestResult) int {
	type edge struct {
		t     float64
		delta int
	}
	var edges []edge
	for _, r := range results {
		edges = append(edges, edge{r.StartS, 1}, edge{r.StartS + r.E2ES, -1})
	}
	// Ends sort before starts at the same instant: back-to-back requests
	// do not overlap.
	slices.SortFunc(edges, func(a, b edge) int {
		if a.t != b.t {
			if a.t < b.t {
				return -1
			}
			return 1
		}
		return a.delta - b.delta
	})
	cur, best := 0, 0
	for _, e := range edges {
		cur += e.delta
		best = max(best, cur)
	}
	return best
}
