// Package introspect measures where gpt-oss's attention goes: for every
// layer and query head, the share of attention mass on the learned sink,
// on keys inside the sliding window and on keys beyond it; and what
// removing the sinks or changing the window does to the next-token
// distributions (KL divergence) and to the perplexity of the text.
//
// The masses are computed in float64 from the engine's own q and k (traced
// after RoPE, see model.Tracer) with the softmax of spec §5 steps d–e, so
// they describe exactly the attention the engine computed.
package introspect

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/model"
)

// HeadMass is where one query head's attention goes, averaged over the
// query positions of the text. The three shares sum to 1.
//
// With W the sliding window width of the model, a key u is "in the
// window" of query t when t − u < W (the W most recent positions, the
// query's own included: exactly what a sliding layer may see) and "beyond"
// when t − u ≥ W. Beyond is therefore always 0 on sliding layers; on full
// layers it is the attention that a sliding window would have cut off.
type HeadMass struct {
	Sink   float64 `json:"sink"`
	Window float64 `json:"window"`
	Beyond float64 `json:"beyond"`
}

// LayerMass is the HeadMass of every query head of one layer.
type LayerMass struct {
	Layer   int        `json:"layer"`
	Sliding bool       `json:"sliding"`
	Heads   []HeadMass `json:"heads"`
}

// Sinks widens every layer's sink logits (BF16) to float32.
func Sinks(w *loader.Weights) ([][]float32, error) {
	out := make([][]float32, len(w.Layers))
	for l, lw := range w.Layers {
		t := lw.Sinks
		if t.DType != loader.BF16 || len(t.Data)%2 != 0 {
			return nil, fmt.Errorf("introspect: layer %d sinks: dtype %s, want BF16", l, t.DType)
		}
		s := make([]float32, len(t.Data)/2)
		for i := range s {
			s[i] = math.Float32frombits(uint32(t.Data[2*i])<<16 | uint32(t.Data[2*i+1])<<24)
		}
		out[l] = s
	}
	return out, nil
}

// layerAttention is one layer's traced queries and keys (after RoPE) for n
// positions, with what the softmax needs.
type layerAttention struct {
	q, k       []float32 // [n, nh·hd], [n, nkv·hd]
	n, nh, nkv int
	hd         int
	sliding    bool
	window     int
	sinks      []float32
	scale      float64
}

// weights fills w[0..t] with query t's attention weights on keys 0…t for
// head h (0 outside the mask) and returns the weight of the sink; the
// weights and the sink sum to 1 (spec §5 e).
func (a *layerAttention) weights(w []float64, t, h int) (sink float64) {
	kv := h / (a.nh / a.nkv)
	q := a.q[t*a.nh*a.hd+h*a.hd : t*a.nh*a.hd+(h+1)*a.hd]
	lo := 0
	if a.sliding {
		lo = max(0, t-a.window+1)
	}
	m := float64(a.sinks[h])
	for u := lo; u <= t; u++ {
		k := a.k[u*a.nkv*a.hd+kv*a.hd : u*a.nkv*a.hd+(kv+1)*a.hd]
		var dot float64
		for i, qi := range q {
			dot += float64(qi) * float64(k[i])
		}
		w[u] = dot * a.scale
		m = math.Max(m, w[u])
	}
	denom := math.Exp(float64(a.sinks[h]) - m) // 0 for a removed (−∞) sink
	for u := lo; u <= t; u++ {
		w[u] = math.Exp(w[u] - m)
		denom += w[u]
	}
	for u := range lo {
		w[u] = 0
	}
	for u := lo; u <= t; u++ {
		w[u] /= denom
	}
	return math.Exp(float64(a.sinks[h])-m) / denom
}

// masses averages each head's sink / window / beyond shares over the
// query positions, heads spread over the CPUs.
func (a *layerAttention) masses() []HeadMass {
	out := make([]HeadMass, a.nh)
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), a.nh)
	for wk := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := make([]float64, a.n)
			for h := wk; h < a.nh; h += workers {
				var hm HeadMass
				for t := range a.n {
					hm.Sink += a.weights(w, t, h)
					for u := 0; u <= t; u++ {
						if t-u < a.window {
							hm.Window += w[u]
						} else {
							hm.Beyond += w[u]
						}
					}
				}
				n := float64(a.n)
				out[h] = HeadMass{Sink: hm.Sink / n, Window: hm.Window / n, Beyond: hm.Beyond / n}
			}
		}()
	}
	wg.Wait()
	return out
}

// Masses runs the model over tokens in one prefill and returns the
// attention masses of the requested layers (layer < 0: all) together with
// the logits, [len(tokens), vocab]. sinks must be the sink logits the
// model runs with (Sinks of its weights), since the weights are
// recomputed from them.
func Masses(ctx context.Context, m *model.Model, sinks [][]float32, tokens []int32, layer int) ([]LayerMass, []float32, error) {
	c := m.Config
	if len(sinks) != c.NumLayers {
		return nil, nil, fmt.Errorf("introspect: %d layers of sinks for %d layers", len(sinks), c.NumLayers)
	}
	if layer >= c.NumLayers {
		return nil, nil, fmt.Errorf("introspect: layer %d outside 0…%d", layer, c.NumLayers-1)
	}
	be := m.Backend()
	n := len(tokens)
	var (
		out      []LayerMass
		traceErr error
		q        []float32
	)
	read := func(x backend.Tensor, rows int) []float32 {
		buf := make([]float32, rows*x.Shape()[1])
		if err := be.ReadFloats(buf, x, rows); err != nil && traceErr == nil {
			traceErr = err
		}
		return buf
	}
	trace := func(name string, x backend.Tensor, rows int) {
		var l int
		var what string
		if _, err := fmt.Sscanf(name, "l%d_%s", &l, &what); err != nil || (layer >= 0 && l != layer) {
			return
		}
		switch what {
		case "q":
			q = read(x, rows)
		case "k":
			if len(sinks[l]) != c.NumHeads {
				traceErr = fmt.Errorf("introspect: layer %d has %d sinks for %d heads", l, len(sinks[l]), c.NumHeads)
				return
			}
			a := &layerAttention{
				q: q, k: read(x, rows), n: rows, nh: c.NumHeads, nkv: c.NumKVHeads, hd: c.HeadDim,
				sliding: c.Sliding[l], window: c.SlidingWindow, sinks: sinks[l],
				scale: float64(float32(1 / math.Sqrt(float64(c.HeadDim)))), // the model's f32 scale
			}
			out = append(out, LayerMass{Layer: l, Sliding: c.Sliding[l], Heads: a.masses()})
		}
	}
	logits, err := m.Logits(ctx, tokens, n, trace)
	if err != nil {
		return nil, nil, fmt.Errorf("introspect: %w", err)
	}
	if traceErr != nil {
		return nil, nil, fmt.Errorf("introspect: reading q, k: %w", traceErr)
	}
	return out, logits, nil
}
