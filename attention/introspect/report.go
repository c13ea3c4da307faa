package introspect

import (
	"context"
	"fmt"
	"math"

	"github.com/gptoss/gptoss/model"
)

// Ablation is one attention change and its effect on the text.
type Ablation struct {
	Name   string                `json:"name"`
	Change model.AttentionChange `json:"-"`
	// MeanKL and MaxKL are KL(unmodified ‖ ablated) of the next-token
	// distributions, in nats, averaged and maximised over positions.
	MeanKL float64 `json:"mean_kl"`
	MaxKL  float64 `json:"max_kl"`
	// Perplexity of the text under the ablated model.
	Perplexity float64 `json:"perplexity"`
	// ArgmaxChanged is the share of positions whose most likely next token
	// changed.
	ArgmaxChanged float64 `json:"argmax_changed"`
}

// Report is the whole introspection of one text.
type Report struct {
	Tokens     int         `json:"tokens"`
	Window     int         `json:"window"` // W of HeadMass
	Layers     []LayerMass `json:"layers"`
	Perplexity float64     `json:"perplexity"` // of the text, unmodified model
	Ablations  []Ablation  `json:"ablations"`
}

// AblationName names a change the way the CLI prints it.
func AblationName(c model.AttentionChange) string {
	switch {
	case c.NoSinks && c.Window > 0:
		return fmt.Sprintf("no-sinks+window=%d", c.Window)
	case c.NoSinks:
		return "no-sinks"
	case c.Window > 0:
		return fmt.Sprintf("window=%d", c.Window)
	}
	return "unmodified"
}

// Run measures the attention masses of the model on tokens (layer < 0: all
// layers) and runs each ablation. At least two tokens are needed for a
// perplexity.
func Run(ctx context.Context, m *model.Model, sinks [][]float32, tokens []int32, layer int, ablations []model.AttentionChange) (*Report, error) {
	if len(tokens) < 2 {
		return nil, fmt.Errorf("introspect: %d tokens: need at least 2 (the perplexity predicts each next token)", len(tokens))
	}
	layers, base, err := Masses(ctx, m, sinks, tokens, layer)
	if err != nil {
		return nil, err
	}
	vocab := m.Config.VocabSize
	r := &Report{Tokens: len(tokens), Window: m.Config.SlidingWindow, Layers: layers, Perplexity: Perplexity(base, tokens, vocab)}
	for _, c := range ablations {
		am, err := m.WithAttention(c)
		if err != nil {
			return nil, fmt.Errorf("introspect: %s: %w", AblationName(c), err)
		}
		logits, err := am.Logits(ctx, tokens, len(tokens), nil)
		if err != nil {
			return nil, fmt.Errorf("introspect: %s: %w", AblationName(c), err)
		}
		a := Ablation{Name: AblationName(c), Change: c, Perplexity: Perplexity(logits, tokens, vocab)}
		var changed int
		for t := range tokens {
			p, q := base[t*vocab:(t+1)*vocab], logits[t*vocab:(t+1)*vocab]
			kl := KL(p, q)
			a.MeanKL += kl
			a.MaxKL = math.Max(a.MaxKL, kl)
			if argmax(p) != argmax(q) {
				changed++
			}
		}
		a.MeanKL /= float64(len(tokens))
		a.ArgmaxChanged = float64(changed) / float64(len(tokens))
		r.Ablations = append(r.Ablations, a)
	}
	return r, nil
}

// logSoftmax returns log p for logits, in float64.
func logSoftmax(logits []float32) []float64 {
	m := math.Inf(-1)
	for _, x := range logits {
		m = math.Max(m, float64(x))
	}
	var sum float64
	for _, x := range logits {
		sum += math.Exp(float64(x) - m)
	}
	lse := m + math.Log(sum)
	out := make([]float64, len(logits))
	for i, x := range logits {
		out[i] = float64(x) - lse
	}
	return out
}

// KL is KL(softmax(p) ‖ softmax(q)) in nats.
func KL(p, q []float32) float64 {
	lp, lq := logSoftmax(p), logSoftmax(q)
	var kl float64
	for i := range lp {
		kl += math.Exp(lp[i]) * (lp[i] - lq[i])
	}
	return math.Max(kl, 0) // rounding can leave a tiny negative
}

// Perplexity is exp of the mean negative log-likelihood of tokens[t+1]
// under the logits of position t, for t = 0 … len(tokens)−2.
func Perplexity(logits []float32, tokens []int32, vocab int) float64 {
	if len(tokens) < 2 {
		return math.NaN()
	}
	var nll float64
	for t := 0; t+1 < len(tokens); t++ {
		nll -= logSoftmax(logits[t*vocab : (t+1)*vocab])[tokens[t+1]]
	}
	return math.Exp(nll / float64(len(tokens)-1))
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
