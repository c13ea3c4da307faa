package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Sampling are the per-request sampling parameters, applied in vLLM's
// order: repetition penalties, temperature, top-k, top-p, min-p.
type Sampling struct {
	Temperature      float64 // 0 is greedy
	TopP             float64 // (0, 1]; 1 disables
	TopK             int     // ≤ 0 disables
	MinP             float64 // [0, 1]; 0 disables
	FrequencyPenalty float64 // [-2, 2]
	PresencePenalty  float64 // [-2, 2]
	Seed             *uint64 // nil: a random seed
	Logprobs         bool    // report the sampled token's log-probability
	TopLogprobs      int     // and this many alternatives (0–20)
}

// DefaultSampling is what OpenAI's API does when a request says nothing.
func DefaultSampling() Sampling { return Sampling{Temperature: 1, TopP: 1} }

// Validate reports the first out-of-range parameter by its API name.
func (s Sampling) Validate() error {
	switch {
	case s.Temperature < 0 || s.Temperature > 2 || math.IsNaN(s.Temperature):
		return &ParamError{"temperature", fmt.Sprintf("temperature %g must be in [0, 2]", s.Temperature)}
	case !(s.TopP > 0 && s.TopP <= 1):
		return &ParamError{"top_p", fmt.Sprintf("top_p %g must be in (0, 1]", s.TopP)}
	case s.MinP < 0 || s.MinP > 1 || math.IsNaN(s.MinP):
		return &ParamError{"min_p", fmt.Sprintf("min_p %g must be in [0, 1]", s.MinP)}
	case math.Abs(s.FrequencyPenalty) > 2 || math.IsNaN(s.FrequencyPenalty):
		return &ParamError{"frequency_penalty", "frequency_penalty must be in [-2, 2]"}
	case math.Abs(s.PresencePenalty) > 2 || math.IsNaN(s.PresencePenalty):
		return &ParamError{"presence_penalty", "presence_penalty must be in [-2, 2]"}
	case s.TopLogprobs < 0 || s.TopLogprobs > 20:
		return &ParamError{"top_logprobs", "top_logprobs must be in [0, 20]"}
	}
	return nil
}

// TokenLogprob is a token and its log-probability under the model.
type TokenLogprob struct {
	ID      int32
	Logprob float32
}

// Token is one generated token. Logprob and Top are set only when the
// request asked for log-probabilities.
type Token struct {
	ID      int32
	Logprob float32
	Top     []TokenLogprob
}

// Constraint limits which tokens may come next (tool_choice "required"
// forces a well-formed tool call this way).
type Constraint interface {
	// Mask sets the logits of forbidden tokens to -Inf.
	Mask(logits []float32)
	// Advance records the token that was sampled.
	Advance(id int32)
}

// sampler draws tokens for one sequence. It owns its random source and
// scratch space, so a sequence samples the same way whatever batch it runs in.
type sampler struct {
	p      Sampling
	rng    *rand.Rand
	counts map[int32]int // generated-token counts, for the penalties
	work   []float64     // scratch: adjusted logits, then probabilities
	order  []int32       // scratch: candidates for top-k / top-p
}

func newSampler(p Sampling) *sampler {
	seed := rand.Uint64()
	if p.Seed != nil {
		seed = *p.Seed
	}
	return &sampler{p: p, rng: rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15)), counts: map[int32]int{}}
}

// sample picks the next token. Log-probabilities are those of the model's
// own distribution (before penalties, temperature and constraints), as
// OpenAI and vLLM report them. logits is modified by the constraint.
func (s *sampler) sample(logits []float32, c Constraint) Token {
	var tok Token
	var lse float64
	wantLP := s.p.Logprobs || s.p.TopLogprobs > 0
	if wantLP {
		lse = logSumExp(logits)
		tok.Top = topLogprobs(logits, s.p.TopLogprobs, lse)
	}
	var raw []float32
	if wantLP && c != nil {
		raw = slices.Clone(logits) // the constraint masks in place
	}
	if c != nil {
		c.Mask(logits)
	}
	tok.ID = s.pick(logits)
	if wantLP {
		if raw == nil {
			raw = logits
		}
		tok.Logprob = float32(float64(raw[tok.ID]) - lse)
	}
	s.counts[tok.ID]++
	if c != nil {
		c.Advance(tok.ID)
	}
	return tok
}

// pick applies penalties, temperature, top-k, top-p and min-p and draws.
func (s *sampler) pick(logits []float32) int32 {
	p := s.p
	if cap(s.work) < len(logits) {
		s.work = make([]float64, len(logits))
	}
	w := s.work[:len(logits)]
	for i, v := range logits {
		w[i] = float64(v)
	}
	for id, n := range s.counts {
		w[id] -= p.FrequencyPenalty*float64(n) + p.PresencePenalty
	}
	if p.Temperature == 0 {
		return int32(argmax(w))
	}
	m := w[argmax(w)]
	if math.IsInf(m, -1) {
		return int32(argmax(w)) // everything masked: nothing sensible left to draw
	}
	var total float64
	for i, v := range w {
		w[i] = math.Exp((v - m) / p.Temperature)
		total += w[i]
	}
	// min-p: drop tokens below min_p × the top probability (the top is 1).
	if p.MinP > 0 {
		for i, v := range w {
			if v < p.MinP {
				total -= v
				w[i] = 0
			}
		}
	}
	if p.TopK > 0 || p.TopP < 1 {
		return s.pickSorted(w)
	}
	u := s.rng.Float64() * total
	last := 0
	for i, v := range w {
		if v == 0 {
			continue
		}
		last = i
		if u -= v; u < 0 {
			return int32(i)
		}
	}
	return int32(last)
}

// pickSorted draws from the k most likely tokens, cut further to the
// smallest prefix whose share of their mass reaches top_p.
func (s *sampler) pickSorted(w []float64) int32 {
	s.order = s.order[:0]
	for i, v := range w {
		if v > 0 {
			s.order = append(s.order, int32(i))
		}
	}
	slices.SortFunc(s.order, func(a, b int32) int {
		switch {
		case w[a] > w[b]:
			return -1
		case w[a] < w[b]:
			return 1
		}
		return int(a - b)
	})
	cand := s.order
	if s.p.TopK > 0 && len(cand) > s.p.TopK {
		cand = cand[:s.p.TopK]
	}
	var kmass float64
	for _, id := range cand {
		kmass += w[id]
	}
	var mass float64
	n := 0
	for _, id := range cand {
		mass += w[id]
		n++
		if mass >= s.p.TopP*kmass {
			break
		}
	}
	cand = cand[:n]
	u := s.rng.Float64() * mass
	for _, id := range cand {
		if u -= w[id]; u < 0 {
			return id
		}
	}
	return cand[len(cand)-1]
}

// argmax returns the first index of the largest value.
func argmax(w []float64) int {
	best := 0
	for i, v := range w {
		if v > w[best] {
			best = i
		}
	}
	return best
}

func logSumExp(x []float32) float64 {
	m := float64(x[0])
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
}

// topLogprobs returns the n most likely tokens, most likely first.
func topLogprobs(logits []float32, n int, lse float64) []TokenLogprob {
	if n <= 0 {
		return nil
	}
	top := make([]TokenLogprob, 0, n+1)
	for i, v := range logits {
		if len(top) == n && v <= top[n-1].Logprob {
			continue
		}
		j := len(top)
		for j > 0 && top[j-1].Logprob < v {
			j--
		}
		top = slices.Insert(top, j, TokenLogprob{ID: int32(i), Logprob: v})
		if len(top) > n {
			top = top[:n]
		}
	}
	for i := range top {
		top[i].Logprob = float32(float64(top[i].Logprob) - lse)
	}
	return top
}
