package serve

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/gptoss/gptoss/tokenizer"
)

// LoadConfig describes one run: which prompts to send, how many, how fast
// and how many at once.
type LoadConfig struct {
	Target   Target
	Prompts  []Prompt // request i sends Prompts[i % len(Prompts)]
	Requests int
	// Concurrency caps requests in flight; ≤ 0 is no cap.
	Concurrency int
	// RequestRate is the mean arrival rate in requests/s; +Inf or ≤ 0
	// sends as fast as Concurrency allows. Burstiness shapes the gaps
	// (1: Poisson).
	RequestRate float64
	Burstiness  float64
	Seed        uint64
	Sampling    Sampling
	// RequestTimeout bounds each request; 0 is no bound.
	RequestTimeout time.Duration
	SLO            SLO
	Tokenizer      *tokenizer.Tokenizer
	// Progress, if set, hears about every finished request.
	Progress *Progress
}

// RunResult is one run: the summary and every request.
type RunResult struct {
	Summary  Summary         `json:"summary"`
	Requests []RequestResult `json:"requests"`
}

// Run sends the requests and waits for all of them. It fails only on a
// bad configuration or when ctx ends (then with the partial result); a
// request that fails is a result, not an error.
func Run(ctx context.Context, cfg LoadConfig) (RunResult, error) {
	if cfg.Requests <= 0 {
		return RunResult{}, fmt.Errorf("run: need at least one request, got %d", cfg.Requests)
	}
	if len(cfg.Prompts) == 0 {
		return RunResult{}, fmt.Errorf("run: no prompts")
	}
	if cfg.Sampling.MaxTokens <= 0 {
		return RunResult{}, fmt.Errorf("run: max tokens must be at least 1, got %d", cfg.Sampling.MaxTokens)
	}
	burst := cfg.Burstiness
	if burst == 0 {
		burst = 1
	}
	schedule, err := ArrivalSchedule(cfg.Requests, cfg.RequestRate, burst, cfg.Seed)
	if err != nil {
		return RunResult{}, err
	}
	slots := cfg.Concurrency
	if slots <= 0 || slots > cfg.Requests {
		slots = cfg.Requests
	}
	c := newClient(cfg.Target, cfg.Tokenizer, slots)
	defer c.close()

	results := make([]RequestResult, cfg.Requests)
	sem := make(chan struct{}, slots)
	var wg sync.WaitGroup
	start := time.Now()
	if cfg.Progress != nil {
		cfg.Progress.Begin(cfg.Requests)
	}
	var ctxErr error
	sent := 0
dispatch:
	for i := range cfg.Requests {
		if wait := time.Until(start.Add(schedule[i])); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				ctxErr = ctx.Err()
				break dispatch
			case <-t.C:
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			ctxErr = ctx.Err()
			break dispatch
		}
		sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rctx := ctx
			if cfg.RequestTimeout > 0 {
				var cancel context.CancelFunc
				rctx, cancel = context.WithTimeout(ctx, cfg.RequestTimeout)
				defer cancel()
			}
			sentAt := time.Since(start)
			r := c.do(rctx, cfg.Prompts[i%len(cfg.Prompts)], cfg.Sampling)
			r.Index = i
			r.StartS = sentAt.Seconds()
			results[i] = r
			if cfg.Progress != nil {
				cfg.Progress.Done(r.OK)
			}
		}()
	}
	wg.Wait()
	duration := time.Since(start)
	if cfg.Progress != nil {
		cfg.Progress.End()
	}
	// On interruption the requests sent so far are still summarised, so a
	// long run stopped with ^C keeps what it measured.
	results = results[:sent]
	res := RunResult{Summary: Summarize(results, duration, cfg.SLO), Requests: results}
	if ctxErr == nil {
		ctxErr = ctx.Err()
	}
	if ctxErr != nil {
		return res, fmt.Errorf("run interrupted after %d of %d requests: %w", sent, cfg.Requests, ctxErr)
	}
	return res, nil
}

// Warmup sends n requests one after another and discards them, so that a
// server's lazy start-up (page faults, JIT, first allocation) is not
// charged to the first measured request. It reports the first failure.
func Warmup(ctx context.Context, t Target, p Prompt, s Sampling, n int) error {
	if n <= 0 {
		return nil
	}
	c := newClient(t, nil, 1)
	defer c.close()
	for range n {
		r := c.do(ctx, p, s)
		if !r.OK {
			return fmt.Errorf("warm-up request failed: %s", r.Error)
		}
	}
	return nil
}

// rateText renders a request rate for tables.
func rateText(r float64) string {
	if r <= 0 || math.IsInf(r, 1) {
		return "inf"
	}
	return fmt.Sprintf("%g/s", r)
}
