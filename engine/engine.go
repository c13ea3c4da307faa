// Package engine runs generation requests on a model with continuous
// batching: every step decodes one token for each running sequence and
// prefills waiting prompts in chunks within a token budget. Admission is
// bounded by KV-cache memory, reserved for a request's whole length.
package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/model"
)

// Errors a caller maps to HTTP statuses.
var (
	ErrQueueFull = errors.New("engine: the request queue is full")
	ErrClosed    = errors.New("engine: shutting down")
)

// ParamError is a request parameter out of range; Param is its API name.
type ParamError struct {
	Param, Message string
}

func (e *ParamError) Error() string { return e.Message }

// Options size the engine.
type Options struct {
	MaxSeqs      int   // sequences running at once (--max-num-seqs)
	MaxModelLen  int   // prompt + generated tokens per sequence (--max-model-len)
	KVCacheBytes int64 // memory the KV caches of running sequences may reserve
	MaxQueue     int   // waiting requests beyond which Submit answers ErrQueueFull
	StepTokens   int   // token budget of one step (decode rows + prefill chunk rows)
}

// Request is one generation.
type Request struct {
	Prompt     []int32
	MaxTokens  int
	Sampling   Sampling
	StopTokens []int32    // generation ends after emitting one of these
	MinTokens  int        // stop tokens are not sampled before this many tokens
	Constraint Constraint // optional
}

// Finish reasons.
const (
	FinishStop      = "stop"      // a stop token was sampled
	FinishLength    = "length"    // max_tokens or the model length was reached
	FinishCancelled = "cancelled" // the caller's context ended
	FinishError     = "error"
)

// Event is one step of a stream: a token, or the end (Done).
type Event struct {
	Token        Token
	Done         bool
	FinishReason string
	Err          error
	PromptTokens int
	Generated    int
}

// Stats is a snapshot for metrics.
type Stats struct {
	Running, Waiting   int
	KVReserved, KVUsed int64 // bytes
	KVCapacity         int64
}

// Engine schedules requests onto one model. Run drives it; Submit and
// Stats may be called from any goroutine.
type Engine struct {
	m                   *model.Model
	opts                Options
	kvPerToken, kvFixed int64

	mu       sync.Mutex
	wake     chan struct{} // signalled when work arrives
	waiting  []*sequence
	running  []*sequence
	reserved int64
	closed   bool
}

// New makes an engine for a model.
func New(m *model.Model, o Options) (*Engine, error) {
	c := m.Config
	if o.MaxSeqs <= 0 || o.MaxModelLen <= 0 || o.StepTokens <= 0 || o.MaxQueue < 0 {
		return nil, fmt.Errorf("engine: max sequences %d, model length %d and step tokens %d must be positive", o.MaxSeqs, o.MaxModelLen, o.StepTokens)
	}
	if c.MaxPositions > 0 && o.MaxModelLen > c.MaxPositions {
		return nil, fmt.Errorf("engine: max model length %d exceeds the model's %d positions", o.MaxModelLen, c.MaxPositions)
	}
	// float32 keys and values: full layers grow with the sequence, sliding
	// layers hold a fixed window.
	perPos := int64(2 * c.NumKVHeads * c.HeadDim * 4)
	e := &Engine{m: m, opts: o, wake: make(chan struct{}, 1)}
	for _, s := range c.Sliding {
		if s {
			e.kvFixed += perPos * int64(c.SlidingWindow)
		} else {
			e.kvPerToken += perPos
		}
	}
	if o.KVCacheBytes < e.reserve(o.MaxModelLen) {
		return nil, fmt.Errorf("engine: a KV cache of %d bytes cannot hold one sequence of %d tokens (%d bytes)", o.KVCacheBytes, o.MaxModelLen, e.reserve(o.MaxModelLen))
	}
	return e, nil
}

// reserve is the KV memory a sequence of n positions may need.
func (e *Engine) reserve(n int) int64 { return e.kvFixed + e.kvPerToken*int64(n) }

// KVBytesPerToken is the KV memory of one more position.
func (e *Engine) KVBytesPerToken() int64 { return e.kvPerToken }

type sequence struct {
	ctx     context.Context
	req     Request
	out     *Stream
	sampler *sampler
	cache   backend.KVCache
	tokens  []int32 // prompt, then generated tokens
	fed     int     // tokens already in the cache
	gen     int
	reserve int64
}

// Submit queues a request. The stream delivers its tokens; cancelling ctx
// ends it and frees its cache at the next step.
func (e *Engine) Submit(ctx context.Context, r Request) (*Stream, error) {
	if len(r.Prompt) == 0 {
		return nil, &ParamError{"prompt", "the prompt is empty"}
	}
	for _, id := range r.StopTokens {
		if id < 0 || int(id) >= e.m.Config.VocabSize {
			return nil, &ParamError{"stop", fmt.Sprintf("stop token %d is outside the vocabulary of %d", id, e.m.Config.VocabSize)}
		}
	}
	if r.MaxTokens <= 0 {
		return nil, &ParamError{"max_tokens", fmt.Sprintf("max_tokens %d must be positive", r.MaxTokens)}
	}
	if r.MinTokens < 0 || r.MinTokens > r.MaxTokens {
		return nil, &ParamError{"min_tokens", fmt.Sprintf("min_tokens %d must be in [0, max_tokens %d]", r.MinTokens, r.MaxTokens)}
	}
	if n := len(r.Prompt) + r.MaxTokens; n > e.opts.MaxModelLen {
		return nil, &ParamError{"max_tokens", fmt.Sprintf("this model's maximum context length is %d tokens; the request has %d prompt tokens and asks for %d more (%d)", e.opts.MaxModelLen, len(r.Prompt), r.MaxTokens, n)}
	}
	for _, t := range r.Prompt {
		if t < 0 || int(t) >= e.m.Config.VocabSize {
			return nil, &ParamError{"prompt", fmt.Sprintf("token %d is outside the vocabulary of %d", t, e.m.Config.VocabSize)}
		}
	}
	if err := r.Sampling.Validate(); err != nil {
		return nil, err
	}
	s := &sequence{
		ctx: ctx, req: r, out: newStream(), sampler: newSampler(r.Sampling),
		tokens:  append(make([]int32, 0, len(r.Prompt)+r.MaxTokens), r.Prompt...),
		reserve: e.reserve(len(r.Prompt) + r.MaxTokens),
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	if len(e.waiting) >= e.opts.MaxQueue {
		return nil, ErrQueueFull
	}
	e.waiting = append(e.waiting, s)
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return s.out, nil
}

// Close stops accepting requests; Run returns once what is in flight is done.
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Stats reports the current load.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := Stats{Running: len(e.running), Waiting: len(e.waiting), KVReserved: e.reserved, KVCapacity: e.opts.KVCacheBytes}
	for _, s := range e.running {
		if s.cache != nil {
			st.KVUsed += s.cache.Bytes()
		}
	}
	return st
}

// Run drives the engine until ctx ends (everything in flight is cancelled)
// or Close was called and all requests have finished.
func (e *Engine) Run(ctx context.Context) error {
	st := e.m.NewState(e.opts.StepTokens)
	logits := make([]float32, e.opts.StepTokens*e.m.Config.VocabSize)
	for {
		if !e.admit() {
			return nil
		}
		if len(e.running) == 0 {
			select {
			case <-ctx.Done():
				e.cancelAll(ctx.Err())
				return ctx.Err()
			case <-e.wake:
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			e.cancelAll(err)
			return err
		}
		if err := e.step(st, logits); err != nil {
			// A failing forward pass fails every running sequence but
			// leaves the engine serving new requests.
			e.failRunning(err)
		}
	}
}

// admit drops cancelled sequences and moves waiting requests to running
// while sequence slots and KV memory allow. It reports false when the
// engine is closed and idle.
func (e *Engine) admit() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	kept := e.running[:0]
	for _, s := range e.running {
		if err := s.ctx.Err(); err != nil {
			e.finish(s, FinishCancelled, nil)
			continue
		}
		kept = append(kept, s)
	}
	clear(e.running[len(kept):])
	e.running = kept
	waiting := e.waiting[:0]
	for _, s := range e.waiting {
		switch {
		case s.ctx.Err() != nil:
			s.out.push(Event{Done: true, FinishReason: FinishCancelled, PromptTokens: len(s.req.Prompt)})
		case len(e.running) < e.opts.MaxSeqs && e.reserved+s.reserve <= e.opts.KVCacheBytes && len(waiting) == 0:
			// First come, first served: a request never overtakes an
			// earlier one that is still waiting for memory.
			cache, err := e.m.NewCache(len(s.req.Prompt) + s.req.MaxTokens)
			if err != nil {
				s.out.push(Event{Done: true, FinishReason: FinishError, Err: err})
				continue
			}
			s.cache = cache
			e.reserved += s.reserve
			e.running = append(e.running, s)
		default:
			waiting = append(waiting, s)
		}
	}
	clear(e.waiting[len(waiting):])
	e.waiting = waiting
	return !(e.closed && len(e.running) == 0 && len(e.waiting) == 0)
}

// finish ends a running sequence's stream and releases its cache. Called
// with e.mu held.
func (e *Engine) finish(s *sequence, reason string, err error) {
	s.out.push(Event{Done: true, FinishReason: reason, Err: err, PromptTokens: len(s.req.Prompt), Generated: s.gen})
	if s.cache != nil {
		s.cache.Free()
		s.cache = nil
	}
	e.reserved -= s.reserve
}

func (e *Engine) cancelAll(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.running {
		e.finish(s, FinishCancelled, err)
	}
	for _, s := range e.waiting {
		s.out.push(Event{Done: true, FinishReason: FinishCancelled, Err: err})
	}
	e.running, e.waiting = nil, nil
}

func (e *Engine) failRunning(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.running {
		e.finish(s, FinishError, err)
	}
	e.running = nil
}

// step runs one forward pass: a decode row for every sequence whose prompt
// is in the cache, then prompt chunks of the others within the budget.
func (e *Engine) step(st *model.State, logits []float32) error {
	type part struct {
		s *sequence
		n int
	}
	var b model.Batch
	var parts []part
	var owners []*sequence // the sequence of each logit row
	budget := e.opts.StepTokens
	add := func(s *sequence, n int) {
		row := len(b.Tokens)
		b.Tokens = append(b.Tokens, s.tokens[s.fed:s.fed+n]...)
		b.Segments = append(b.Segments, backend.Segment{Cache: s.cache, Row: row, Pos: s.fed, Len: n})
		parts = append(parts, part{s, n})
		if s.fed+n == len(s.tokens) { // the last known token: sample the next
			b.LogitRows = append(b.LogitRows, row+n-1)
			owners = append(owners, s)
		}
		budget -= n
	}
	e.mu.Lock()
	running := append([]*sequence(nil), e.running...)
	e.mu.Unlock()
	for _, s := range running { // decode rows first: they keep streams moving
		if s.fed >= len(s.req.Prompt) && budget > 0 {
			add(s, len(s.tokens)-s.fed)
		}
	}
	for _, s := range running {
		if s.fed < len(s.req.Prompt) && budget > 0 {
			add(s, min(budget, len(s.tokens)-s.fed))
		}
	}
	if len(b.Tokens) == 0 {
		return nil
	}
	if err := e.m.Forward(st, b, logits, nil); err != nil {
		return err
	}
	for _, p := range parts {
		p.s.fed += p.n
	}
	vocab := e.m.Config.VocabSize
	// Sampling reads a whole vocabulary row per sequence (201,088 values
	// for gpt-oss): with 64 sequences one thread would take longer than
	// the GPU's step, so the rows are sampled in parallel. Each sequence
	// has its own sampler.
	toks := make([]Token, len(owners))
	parallelRows(len(owners), func(i int) {
		s := owners[i]
		row := logits[i*vocab : (i+1)*vocab]
		if s.gen < s.req.MinTokens {
			for _, id := range s.req.StopTokens {
				row[id] = float32(math.Inf(-1))
			}
		}
		toks[i] = s.sampler.sample(row, s.req.Constraint)
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	finished := false
	for i, s := range owners {
		tok := toks[i]
		s.tokens = append(s.tokens, tok.ID)
		s.gen++
		s.out.push(Event{Token: tok})
		switch {
		case isStop(tok.ID, s.req.StopTokens):
			e.finish(s, FinishStop, nil)
			finished = true
		case s.gen >= s.req.MaxTokens:
			e.finish(s, FinishLength, nil)
			finished = true
		}
	}
	if finished {
		kept := e.running[:0]
		for _, s := range e.running {
			if s.cache != nil {
				kept = append(kept, s)
			}
		}
		clear(e.running[len(kept):])
		e.running = kept
	}
	return nil
}

// parallelRows runs f(0) … f(n-1) on up to GOMAXPROCS goroutines, each
// taking a contiguous range, and returns when all are done.
func parallelRows(n int, f func(i int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*n/workers, (w+1)*n/workers
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				f(i)
			}
		})
	}
	wg.Wait()
}

func isStop(id int32, stops []int32) bool {
	for _, s := range stops {
		if s == id {
			return true
		}
	}
	return false
}
