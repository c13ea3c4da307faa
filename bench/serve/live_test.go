package serve

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gptoss/gptoss/tokenizer"
)

// TestAgainstTinyServer drives a real server on the tiny random model:
// few requests, short completions, one deadline for the whole test.
func TestAgainstTinyServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server on a synthetic checkpoint")
	}
	base := startTinyServer(t)
	tok, err := tokenizer.Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	model, err := DiscoverModel(ctx, Target{BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	if model != tinyModelName {
		t.Fatalf("discovered model %q, want %q", model, tinyModelName)
	}

	for _, endpoint := range []string{EndpointCompletions, EndpointChat} {
		t.Run(endpoint, func(t *testing.T) {
			prompts, err := RandomPrompts(tok, 3, 24, 7)
			if err != nil {
				t.Fatal(err)
			}
			const requests, maxTokens = 6, 6
			res, err := Run(ctx, LoadConfig{
				Target:   Target{BaseURL: base, Model: model, Endpoint: endpoint},
				Prompts:  prompts,
				Requests: requests, Concurrency: 3,
				Sampling:       Sampling{MaxTokens: maxTokens, IgnoreEOS: true},
				SLO:            SLO{TTFT: time.Minute, TPOT: time.Minute},
				Tokenizer:      tok,
				RequestTimeout: time.Minute,
			})
			if err != nil {
				t.Fatal(err)
			}
			s := res.Summary
			if s.Requests != requests || s.Completed+s.Failed != s.Requests || len(res.Requests) != requests {
				t.Fatalf("counts do not add up: %+v, %d results", s, len(res.Requests))
			}
			if s.Failed != 0 {
				t.Fatalf("%d requests failed: %v (first: %q)", s.Failed, s.Errors, firstError(res.Requests))
			}
			if s.MaxConcurrency > 3 {
				t.Errorf("%d requests in flight, cap was 3", s.MaxConcurrency)
			}
			sumOut := 0
			for i, r := range res.Requests {
				if r.Index != i {
					t.Errorf("result %d has index %d", i, r.Index)
				}
				if !r.UsageReported {
					t.Errorf("request %d: no usage in the stream (include_usage was asked)", i)
				}
				if r.OutputTokens < 1 || r.OutputTokens > maxTokens {
					t.Errorf("request %d: %d output tokens, want 1..%d", i, r.OutputTokens, maxTokens)
				}
				if r.PromptTokens < 24 {
					t.Errorf("request %d: %d prompt tokens, the prompt alone has 24", i, r.PromptTokens)
				}
				if !(r.TTFTS > 0 && r.TTFTS <= r.E2ES) {
					t.Errorf("request %d: TTFT %v, E2E %v: want 0 < TTFT <= E2E", i, r.TTFTS, r.E2ES)
				}
				if r.OutputTokens > 1 && r.TPOTS <= 0 {
					t.Errorf("request %d: TPOT %v with %d tokens", i, r.TPOTS, r.OutputTokens)
				}
				var itl float64
				for _, v := range r.ITLS {
					itl += v
				}
				if itl > r.E2ES-r.TTFTS+1e-9 {
					t.Errorf("request %d: inter-token gaps sum to %v, more than E2E-TTFT %v", i, itl, r.E2ES-r.TTFTS)
				}
				sumOut += r.OutputTokens
			}
			if s.TotalOutputTokens != sumOut {
				t.Errorf("total output tokens %d, requests sum to %d", s.TotalOutputTokens, sumOut)
			}
			if s.GoodRequests != s.Completed {
				t.Errorf("%d good of %d completed under a one-minute SLO", s.GoodRequests, s.Completed)
			}
			for name, d := range map[string]Distribution{"ttft": s.TTFT, "e2e": s.E2E, "itl": s.ITL, "tpot": s.TPOT} {
				if !(d.Min <= d.Median && d.Median <= d.P90 && d.P90 <= d.P99 && d.P99 <= d.Max) {
					t.Errorf("%s percentiles out of order: %+v", name, d)
				}
			}
			if s.TTFT.Median > s.E2E.Median || s.OutputThroughput <= 0 || s.RequestThroughput <= 0 {
				t.Errorf("implausible summary: %+v", s)
			}
		})
	}

	t.Run("suite", func(t *testing.T) {
		rep, err := RunSuite(ctx, SuiteConfig{
			Suite: SuiteBatchScaling, Target: Target{BaseURL: base, Model: model}, Tokenizer: tok,
			Sampling: Sampling{MaxTokens: 4, IgnoreEOS: true}, InputLen: 16, Levels: []int{1, 2}, Warmup: 1,
			RequestTimeout: time.Minute,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Runs) != 2 || rep.Runs[0].Concurrency != 1 || rep.Runs[1].Concurrency != 2 {
			t.Fatalf("runs %+v", rep.Runs)
		}
		for _, r := range rep.Runs {
			if r.Summary.Requests != 2*r.Concurrency || r.Summary.Failed != 0 {
				t.Errorf("%s: %+v", r.Label, r.Summary)
			}
		}
		var table, page bytes.Buffer
		if err := rep.WriteTable(&table); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(table.String(), "concurrency") {
			t.Errorf("table:\n%s", table.String())
		}
		if err := rep.WriteHTML(&page); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(page.String(), "<svg"); n < 4 {
			t.Errorf("HTML report has %d charts, want at least 4", n)
		}
	})
}

func firstError(rs []RequestResult) string {
	for _, r := range rs {
		if !r.OK {
			return r.Error
		}
	}
	return ""
}
