package engine

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/gptoss/gptoss/backend/cpu"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/model"
)

func testModel(t *testing.T) *model.Model {
	t.Helper()
	ck, err := loader.Open("../testdata/shapes")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := model.New(cpu.New(), ck.Config, &ck.Weights)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func startEngine(t *testing.T, m *model.Model, o Options) *Engine {
	t.Helper()
	e, err := New(m, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

func defaultOptions() Options {
	return Options{MaxSeqs: 16, MaxModelLen: 256, KVCacheBytes: 64 << 20, MaxQueue: 64, StepTokens: 64}
}

func collect(t *testing.T, s *Stream) ([]int32, Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ids []int32
	for {
		ev, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Done {
			return ids, ev
		}
		ids = append(ids, ev.Token.ID)
	}
}

func greedy() Sampling { return Sampling{Temperature: 0, TopP: 1} }

var prompt = []int32{670, 805, 22, 807, 468, 515, 630, 285, 979, 53, 277}

// Greedy generation through the engine equals the argmax of a plain
// prefill of the growing sequence.
func TestGreedyMatchesModel(t *testing.T) {
	m := testModel(t)
	e := startEngine(t, m, defaultOptions())
	s, err := e.Submit(context.Background(), Request{Prompt: prompt, MaxTokens: 6, Sampling: greedy()})
	if err != nil {
		t.Fatal(err)
	}
	got, end := collect(t, s)
	if end.FinishReason != FinishLength || end.Generated != 6 || end.PromptTokens != len(prompt) {
		t.Fatalf("end event %+v", end)
	}
	seq := append([]int32(nil), prompt...)
	vocab := m.Config.VocabSize
	for i := range 6 {
		l, err := m.Logits(context.Background(), seq, len(seq), nil)
		if err != nil {
			t.Fatal(err)
		}
		last := l[(len(seq)-1)*vocab:]
		best := 0
		for j, v := range last {
			if v > last[best] {
				best = j
			}
		}
		if got[i] != int32(best) {
			t.Fatalf("token %d: engine %d, model argmax %d", i, got[i], best)
		}
		seq = append(seq, int32(best))
	}
}

// Greedy output is batch-invariant: the same request alone or among 15
// others (with different prompts, so prefill and decode mix) gives the
// same tokens.
func TestBatchInvariantGreedy(t *testing.T) {
	m := testModel(t)
	o := defaultOptions()
	o.StepTokens = 24 // forces chunked prefill beside decodes
	e := startEngine(t, m, o)
	alone, _ := collect(t, mustSubmit(t, e, Request{Prompt: prompt, MaxTokens: 8, Sampling: greedy()}))
	var wg sync.WaitGroup
	results := make([][]int32, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := prompt
			if i > 0 {
				p = append([]int32{int32(i * 37 % 1000)}, prompt[:1+i%len(prompt)]...)
			}
			results[i], _ = collect(t, mustSubmit(t, e, Request{Prompt: p, MaxTokens: 8, Sampling: greedy()}))
		}()
	}
	wg.Wait()
	for i, v := range alone {
		if results[0][i] != v {
			t.Fatalf("batched %v, alone %v", results[0], alone)
		}
	}
	if st := e.Stats(); st.KVReserved != 0 || st.Running != 0 {
		t.Fatalf("after all requests: %+v", st)
	}
}

func mustSubmit(t *testing.T, e *Engine, r Request) *Stream {
	t.Helper()
	s, err := e.Submit(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStopToken(t *testing.T) {
	m := testModel(t)
	e := startEngine(t, m, defaultOptions())
	ids, _ := collect(t, mustSubmit(t, e, Request{Prompt: prompt, MaxTokens: 4, Sampling: greedy()}))
	s := mustSubmit(t, e, Request{Prompt: prompt, MaxTokens: 4, Sampling: greedy(), StopTokens: []int32{ids[1]}})
	got, end := collect(t, s)
	if end.FinishReason != FinishStop || len(got) != 2 {
		t.Fatalf("tokens %v, end %+v; want a stop after 2", got, end)
	}
}

// min_tokens keeps stop tokens from being sampled until enough were made.
func TestMinTokens(t *testing.T) {
	m := testModel(t)
	e := startEngine(t, m, defaultOptions())
	ids, _ := collect(t, mustSubmit(t, e, Request{Prompt: prompt, MaxTokens: 6, Sampling: greedy()}))
	got, end := collect(t, mustSubmit(t, e, Request{Prompt: prompt, MaxTokens: 6, MinTokens: 4, Sampling: greedy(), StopTokens: []int32{ids[0]}}))
	if len(got) < 4 || got[0] == ids[0] {
		t.Fatalf("tokens %v (end %+v): the stop token %d came before min_tokens 4", got, end, ids[0])
	}
	if _, err := e.Submit(context.Background(), Request{Prompt: prompt, MaxTokens: 2, MinTokens: 3, Sampling: greedy()}); err == nil {
		t.Fatal("min_tokens above max_tokens accepted")
	}
}

func TestCancelFreesCache(t *testing.T) {
	m := testModel(t)
	e := startEngine(t, m, defaultOptions())
	ctx, cancel := context.WithCancel(context.Background())
	s, err := e.Submit(ctx, Request{Prompt: prompt, MaxTokens: 200, Sampling: greedy()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for e.Stats().KVReserved != 0 || e.Stats().Running != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("cache not freed after cancel: %+v", e.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The engine still serves.
	if ids, _ := collect(t, mustSubmit(t, e, Request{Prompt: prompt, MaxTokens: 2, Sampling: greedy()})); len(ids) != 2 {
		t.Fatalf("after a cancel: %v", ids)
	}
}

func TestAdmissionErrors(t *testing.T) {
	m := testModel(t)
	e, err := New(m, Options{MaxSeqs: 1, MaxModelLen: 32, KVCacheBytes: 64 << 20, MaxQueue: 2, StepTokens: 16})
	if err != nil {
		t.Fatal(err)
	}
	// Not running: requests queue up.
	var pe *ParamError
	if _, err := e.Submit(context.Background(), Request{Prompt: prompt, MaxTokens: 30}); !errors.As(err, &pe) || pe.Param != "max_tokens" {
		t.Fatalf("over-long request: %v", err)
	}
	if _, err := e.Submit(context.Background(), Request{Prompt: []int32{5000}, MaxTokens: 1, Sampling: greedy()}); !errors.As(err, &pe) {
		t.Fatalf("token outside the vocabulary: %v", err)
	}
	if _, err := e.Submit(context.Background(), Request{Prompt: prompt, MaxTokens: 1, Sampling: Sampling{Temperature: 3, TopP: 1}}); !errors.As(err, &pe) || pe.Param != "temperature" {
		t.Fatalf("temperature 3: %v", err)
	}
	for range 2 {
		mustSubmit(t, e, Request{Prompt: prompt, MaxTokens: 1, Sampling: greedy()})
	}
	if _, err := e.Submit(context.Background(), Request{Prompt: prompt, MaxTokens: 1, Sampling: greedy()}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third request on a queue of 2: %v", err)
	}
	e.Close()
	if _, err := e.Submit(context.Background(), Request{Prompt: prompt, MaxTokens: 1, Sampling: greedy()}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	// Run drains the two queued requests, then returns.
	if err := e.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Requests beyond the KV memory wait instead of failing.
func TestWaitsForMemory(t *testing.T) {
	m := testModel(t)
	e0, _ := New(m, Options{MaxSeqs: 1, MaxModelLen: 64, KVCacheBytes: 1 << 30, MaxQueue: 1, StepTokens: 16})
	one := e0.reserve(64)
	e := startEngine(t, m, Options{MaxSeqs: 8, MaxModelLen: 64, KVCacheBytes: one, MaxQueue: 8, StepTokens: 16})
	var streams []*Stream
	for range 3 {
		streams = append(streams, mustSubmit(t, e, Request{Prompt: prompt, MaxTokens: 50, Sampling: greedy()}))
	}
	for _, s := range streams {
		if ids, end := collect(t, s); len(ids) != 50 || end.FinishReason != FinishLength {
			t.Fatalf("%d tokens, %+v", len(ids), end)
		}
	}
}

func TestSamplerDeterministicWithSeed(t *testing.T) {
	logits := make([]float32, 1000)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i)) * 3)
	}
	seed := uint64(42)
	p := Sampling{Temperature: 0.8, TopP: 0.9, TopK: 50, Seed: &seed}
	a, b := newSampler(p), newSampler(p)
	for range 20 {
		x, y := a.sample(append([]float32(nil), logits...), nil), b.sample(append([]float32(nil), logits...), nil)
		if x.ID != y.ID {
			t.Fatal("same seed, different tokens")
		}
	}
}

func TestSamplerFilters(t *testing.T) {
	logits := []float32{1, 5, 3, 5.5, -2}
	// top_k 1 and min_p 1 leave only the best token.
	for _, p := range []Sampling{{Temperature: 1, TopP: 1, TopK: 1}, {Temperature: 1, TopP: 1, MinP: 1}, {Temperature: 1, TopP: 0.01}} {
		s := newSampler(p)
		for range 50 {
			if id := s.sample(append([]float32(nil), logits...), nil).ID; id != 3 {
				t.Fatalf("%+v drew %d", p, id)
			}
		}
	}
	// top_k 2 never draws outside the best two.
	s := newSampler(Sampling{Temperature: 2, TopP: 1, TopK: 2})
	for range 200 {
		if id := s.sample(append([]float32(nil), logits...), nil).ID; id != 1 && id != 3 {
			t.Fatalf("top_k 2 drew %d", id)
		}
	}
	// A presence penalty of 2 pushes greedy off a token it already chose.
	g := newSampler(Sampling{Temperature: 0, TopP: 1, PresencePenalty: 2})
	if a, b := g.sample([]float32{1, 5, 3, 5.5, -2}, nil).ID, g.sample([]float32{1, 5, 3, 5.5, -2}, nil).ID; a != 3 || b != 1 {
		t.Fatalf("presence penalty: %d then %d", a, b)
	}
}

func TestSamplerLogprobs(t *testing.T) {
	logits := []float32{1, 5, 3, 5.5, -2}
	s := newSampler(Sampling{Temperature: 0, TopP: 1, Logprobs: true, TopLogprobs: 3})
	tok := s.sample(append([]float32(nil), logits...), nil)
	var z float64
	for _, v := range logits {
		z += math.Exp(float64(v))
	}
	if tok.ID != 3 || math.Abs(float64(tok.Logprob)-(5.5-math.Log(z))) > 1e-5 {
		t.Fatalf("token %+v", tok)
	}
	if len(tok.Top) != 3 || tok.Top[0].ID != 3 || tok.Top[1].ID != 1 || tok.Top[2].ID != 2 {
		t.Fatalf("top logprobs %+v", tok.Top)
	}
}
