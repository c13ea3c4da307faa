package serve

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeServer serves handler on loopback and returns its URL.
func fakeServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

// goodStream is a completions stream of n one-token chunks, gap apart,
// with usage and [DONE].
func goodStream(n int, gap time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		for i := range n {
			time.Sleep(gap)
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"text\":\" tok%d\",\"finish_reason\":null}]}\n\n", i)
			f.Flush()
		}
		fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"length\"}]}\n\n")
		fmt.Fprintf(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n", n, n+3)
		fmt.Fprint(w, "data: [DONE]\n\n")
	}
}

func runOne(t *testing.T, url, endpoint string) RequestResult {
	t.Helper()
	res, err := Run(context.Background(), LoadConfig{
		Target: Target{BaseURL: url, Model: "m", Endpoint: endpoint}, Prompts: []Prompt{{Text: "hi"}},
		Requests: 1, Sampling: Sampling{MaxTokens: 4}, RequestTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.Requests[0]
}

func TestServerErrorsAreFailures(t *testing.T) {
	cases := map[string]http.HandlerFunc{
		"HTTP 500": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":{"message":"boom"}}`, http.StatusInternalServerError)
		},
		"HTTP 429": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":{"message":"busy"}}`, http.StatusTooManyRequests)
		},
		"ended before": func(w http.ResponseWriter, r *http.Request) {
			// A token, then the connection drops: no [DONE].
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"choices\":[{\"text\":\"a\"}]}\n\n")
		},
		"server error": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"choices\":[{\"text\":\"a\"}]}\n\n")
			fmt.Fprint(w, "data: {\"error\":{\"message\":\"generation failed\"}}\n\n")
			fmt.Fprint(w, "data: [DONE]\n\n")
		},
		"bad chunk": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {not json\n\n")
		},
		"no tokens": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: [DONE]\n\n")
		},
		"connection reset": func(w http.ResponseWriter, r *http.Request) {
			hj, _ := w.(http.Hijacker)
			c, _, err := hj.Hijack()
			if err == nil {
				c.Close()
			}
		},
	}
	for want, h := range cases {
		t.Run(want, func(t *testing.T) {
			url := fakeServer(t, h)
			r := runOne(t, url, EndpointCompletions)
			if r.OK {
				t.Fatalf("counted as a success: %+v", r)
			}
			if want != "connection reset" && !strings.Contains(r.Error, want) {
				t.Errorf("error %q does not say %q", r.Error, want)
			}
			s := Summarize([]RequestResult{r}, time.Second, SLO{TTFT: time.Hour})
			if s.Failed != 1 || s.Completed != 0 || s.TTFT.Count != 0 || s.E2E.Count != 0 || s.GoodRequests != 0 || s.OutputThroughput != 0 {
				t.Errorf("a failure showed up as a response: %+v", s)
			}
		})
	}
}

func TestRequestTimeoutIsFailure(t *testing.T) {
	url := fakeServer(t, goodStream(50, 20*time.Millisecond))
	res, err := Run(context.Background(), LoadConfig{
		Target: Target{BaseURL: url}, Prompts: []Prompt{{Text: "hi"}}, Requests: 1,
		Sampling: Sampling{MaxTokens: 4}, RequestTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Requests[0]; r.OK || !strings.Contains(r.Error, "deadline") {
		t.Errorf("a timed-out request: %+v", r)
	}
}

func TestStreamTimings(t *testing.T) {
	const n, gap = 5, 20 * time.Millisecond
	url := fakeServer(t, goodStream(n, gap))
	r := runOne(t, url, EndpointCompletions)
	if !r.OK {
		t.Fatal(r.Error)
	}
	if r.OutputTokens != n || !r.UsageReported || r.PromptTokens != 3 || r.FinishReason != "length" {
		t.Errorf("tokens %+v", r)
	}
	if len(r.ITLS) != n-1 {
		t.Fatalf("%d inter-token gaps, want %d", len(r.ITLS), n-1)
	}
	for _, g := range r.ITLS {
		if g < gap.Seconds()*0.8 {
			t.Errorf("gap %v, the server waited %v", g, gap)
		}
	}
	if r.TTFTS < gap.Seconds()*0.8 || r.TTFTS > r.E2ES {
		t.Errorf("TTFT %v, E2E %v", r.TTFTS, r.E2ES)
	}
	// TPOT excludes the first token: (E2E − TTFT) / (n − 1) ≈ gap.
	if want := (r.E2ES - r.TTFTS) / (n - 1); r.TPOTS != want || r.TPOTS < gap.Seconds()*0.8 {
		t.Errorf("TPOT %v, want %v ≈ %v", r.TPOTS, want, gap)
	}
}

func TestChatRoleChunkIsNotAToken(t *testing.T) {
	var body string
	url := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n")
		f.Flush()
		time.Sleep(50 * time.Millisecond)
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"think\"}}]}\n\n")
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\"Hello world\"}}]}\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
	// Through the /v1 suffix users often paste.
	r := runOne(t, url+"/v1/", EndpointChat)
	if !r.OK {
		t.Fatal(r.Error)
	}
	if r.TTFTS < 0.04 {
		t.Errorf("TTFT %v: the role-only chunk was taken for the first token", r.TTFTS)
	}
	// No usage: tokens are counted with our tokenizer — not known here
	// (nil tokenizer) so the count is 0 and only the chunks were seen.
	if len(r.ITLS) != 1 {
		t.Errorf("ITL %v, want one gap", r.ITLS)
	}
	for _, field := range []string{`"messages"`, `"stream":true`, `"include_usage":true`, `"max_completion_tokens":4`} {
		if !strings.Contains(body, field) {
			t.Errorf("request body %s lacks %s", body, field)
		}
	}
}

func TestIgnoreEOSFields(t *testing.T) {
	var body string
	url := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		goodStream(1, 0)(w, r)
	})
	_, err := Run(context.Background(), LoadConfig{
		Target: Target{BaseURL: url, Model: "m"}, Prompts: []Prompt{{Text: "hi"}}, Requests: 1,
		Sampling: Sampling{MaxTokens: 7, IgnoreEOS: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"ignore_eos":true`, `"min_tokens":7`, `"max_tokens":7`, `"prompt":"hi"`, `"model":"m"`} {
		if !strings.Contains(body, field) {
			t.Errorf("request body %s lacks %s", body, field)
		}
	}
}

func TestConcurrencyCap(t *testing.T) {
	url := fakeServer(t, goodStream(3, 10*time.Millisecond))
	res, err := Run(context.Background(), LoadConfig{
		Target: Target{BaseURL: url}, Prompts: []Prompt{{Text: "a"}, {Text: "b"}}, Requests: 12, Concurrency: 3,
		Sampling: Sampling{MaxTokens: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	if s.Completed != 12 || s.MaxConcurrency > 3 || s.MaxConcurrency < 2 {
		t.Errorf("completed %d, max in flight %d (cap 3)", s.Completed, s.MaxConcurrency)
	}
}

func TestRunInterrupted(t *testing.T) {
	url := fakeServer(t, goodStream(2, 10*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	res, err := Run(ctx, LoadConfig{
		Target: Target{BaseURL: url}, Prompts: []Prompt{{Text: "a"}}, Requests: 1000, Concurrency: 1,
		Sampling: Sampling{MaxTokens: 2},
	})
	if err == nil {
		t.Fatal("no error from an interrupted run")
	}
	if n := res.Summary.Requests; n == 0 || n >= 1000 || len(res.Requests) != n {
		t.Errorf("partial result has %d requests", n)
	}
}
