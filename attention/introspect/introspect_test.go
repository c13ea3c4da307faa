package introspect

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/backend/cpu"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/model"
	"github.com/gptoss/gptoss/synth"
)

// A geometry with both layer kinds (even layers slide) and a window much
// shorter than the text, so every mass is exercised.
func smallConfig() synth.Config {
	return synth.Config{Layers: 4, Hidden: 64, Experts: 4, ExpertsPerToken: 2, Intermediate: 64,
		Heads: 4, KVHeads: 2, HeadDim: 16, Vocab: 512, Window: 4}
}

func openSynth(t *testing.T) *loader.Checkpoint {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ck")
	if _, err := synth.Write(context.Background(), dir, smallConfig(), synth.Options{Seed: 11}); err != nil {
		t.Fatal(err)
	}
	ck, err := loader.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	return ck
}

func tokens(n int) []int32 {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(r.IntN(smallConfig().Vocab))
	}
	return out
}

func newModel(t *testing.T, cfg loader.Config, w *loader.Weights) *model.Model {
	t.Helper()
	m, err := model.New(cpu.New(), cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func bf16Tensor(name string, vals []float32) loader.Tensor {
	data := make([]byte, 2*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint16(data[2*i:], uint16(math.Float32bits(v)>>16))
	}
	return loader.Tensor{Name: name, DType: loader.BF16, Shape: []int{len(vals)}, Data: data}
}

func TestMassesSumToOneAndRespectTheWindow(t *testing.T) {
	ck := openSynth(t)
	m := newModel(t, ck.Config, &ck.Weights)
	sinks, err := Sinks(&ck.Weights)
	if err != nil {
		t.Fatal(err)
	}
	layers, _, err := Masses(context.Background(), m, sinks, tokens(24), -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != ck.Config.NumLayers {
		t.Fatalf("%d layers", len(layers))
	}
	var beyond float64
	for _, l := range layers {
		for h, hm := range l.Heads {
			if s := hm.Sink + hm.Window + hm.Beyond; math.Abs(s-1) > 1e-12 {
				t.Errorf("layer %d head %d: shares sum to %g", l.Layer, h, s)
			}
			if l.Sliding && hm.Beyond != 0 {
				t.Errorf("sliding layer %d head %d sees beyond its window: %g", l.Layer, h, hm.Beyond)
			}
			if !l.Sliding {
				beyond += hm.Beyond
			}
		}
	}
	if beyond == 0 {
		t.Error("no full layer attends beyond the window")
	}
	one, _, err := Masses(context.Background(), m, sinks, tokens(24), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(one) != 1 || one[0].Layer != 1 || !slices.Equal(one[0].Heads, layers[1].Heads) {
		t.Errorf("layer 1 alone: %+v", one)
	}
}

// The weights recomputed from the traced q, k reproduce the engine's
// attention: Σ w·v through o_proj gives the traced attention output. So
// the masses describe the attention the engine actually computed.
func TestWeightsReproduceTheEngine(t *testing.T) {
	ck := openSynth(t)
	c := ck.Config
	m := newModel(t, c, &ck.Weights)
	sinks, _ := Sinks(&ck.Weights)
	be := m.Backend()
	toks := tokens(12)
	n := len(toks)
	got := map[string][]float32{}
	trace := func(name string, x backend.Tensor, rows int) {
		if strings.HasSuffix(name, "_idx") { // int32 expert choices
			return
		}
		buf := make([]float32, rows*x.Shape()[1])
		if err := be.ReadFloats(buf, x, rows); err != nil {
			t.Fatal(err)
		}
		got[name] = buf
	}
	if _, err := m.Logits(context.Background(), toks, n, trace); err != nil {
		t.Fatal(err)
	}
	bf := func(tt loader.Tensor) []float32 {
		out := make([]float32, len(tt.Data)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(tt.Data[2*i:])) << 16)
		}
		return out
	}
	nh, hd, H := c.NumHeads, c.HeadDim, c.HiddenSize
	for l := range c.NumLayers {
		pre := fmt.Sprintf("l%d_", l)
		a := &layerAttention{q: got[pre+"q"], k: got[pre+"k"], n: n, nh: nh, nkv: c.NumKVHeads, hd: hd,
			sliding: c.Sliding[l], window: c.SlidingWindow, sinks: sinks[l], scale: float64(float32(1 / math.Sqrt(float64(hd))))}
		v := got[pre+"v"]
		wo, bo := bf(ck.Weights.Layers[l].O), bf(ck.Weights.Layers[l].OBias)
		w := make([]float64, n)
		for tq := range n {
			o := make([]float64, nh*hd)
			for h := range nh {
				a.weights(w, tq, h)
				kv := h / (nh / c.NumKVHeads)
				for u := 0; u <= tq; u++ {
					for d := range hd {
						o[h*hd+d] += w[u] * float64(v[u*c.NumKVHeads*hd+kv*hd+d])
					}
				}
			}
			want := got[pre+"attn_out"][tq*H : (tq+1)*H]
			for r := range H {
				y := float64(bo[r])
				for i := range nh * hd {
					y += float64(wo[r*nh*hd+i]) * o[i]
				}
				if math.Abs(y-float64(want[r])) > 1e-4*(1+math.Abs(y)) {
					t.Fatalf("layer %d position %d output %d: %g from the weights, engine %g", l, tq, r, y, want[r])
				}
			}
		}
	}
}

// A sink logit set very high takes (almost) all the mass of its head.
func TestHighSinkTakesTheMass(t *testing.T) {
	ck := openSynth(t)
	w := ck.Weights
	w.Layers = slices.Clone(w.Layers)
	sinks, _ := Sinks(&ck.Weights)
	sinks[2] = slices.Clone(sinks[2])
	sinks[2][1] = 40
	w.Layers[2].Sinks = bf16Tensor("sinks", sinks[2])
	m := newModel(t, ck.Config, &w)
	layers, _, err := Masses(context.Background(), m, sinks, tokens(20), -1)
	if err != nil {
		t.Fatal(err)
	}
	if s := layers[2].Heads[1].Sink; s < 0.999 {
		t.Errorf("layer 2 head 1 with sink logit 40: sink mass %g", s)
	}
	for h, hm := range layers[2].Heads {
		if h != 1 && hm.Sink > 0.9 {
			t.Errorf("head %d with an ordinary sink: mass %g", h, hm.Sink)
		}
	}
}

// Removing the sinks changes the logits; the no-sink model's own masses
// have no sink share.
func TestRemovingSinksChangesLogits(t *testing.T) {
	ck := openSynth(t)
	m := newModel(t, ck.Config, &ck.Weights)
	sinks, _ := Sinks(&ck.Weights)
	toks := tokens(16)
	before, _, err := Masses(context.Background(), m, sinks, toks, -1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), m, sinks, toks, -1, []model.AttentionChange{{NoSinks: true}})
	if err != nil {
		t.Fatal(err)
	}
	a := r.Ablations[0]
	if a.Name != "no-sinks" || !(a.MeanKL > 1e-6) || a.MaxKL < a.MeanKL || a.Perplexity == r.Perplexity {
		t.Errorf("no-sinks ablation: %+v (unmodified perplexity %g)", a, r.Perplexity)
	}
	ns, err := m.WithAttention(model.AttentionChange{NoSinks: true})
	if err != nil {
		t.Fatal(err)
	}
	removed := make([][]float32, len(sinks))
	for l := range removed {
		removed[l] = slices.Repeat([]float32{float32(math.Inf(-1))}, len(sinks[l]))
	}
	layers, _, err := Masses(context.Background(), ns, removed, toks, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		for h, hm := range l.Heads {
			if hm.Sink != 0 || math.Abs(hm.Window+hm.Beyond-1) > 1e-12 {
				t.Errorf("no sinks, layer %d head %d: %+v", l.Layer, h, hm)
			}
		}
	}
	// The copy leaves the original model untouched.
	after, _, err := Masses(context.Background(), m, sinks, toks, -1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(before, after, func(a, b LayerMass) bool { return slices.Equal(a.Heads, b.Heads) }) {
		t.Error("the unmodified model changed")
	}
}

// A sliding window as long as the text is full attention: the logits equal
// those of the same weights with every layer full.
func TestFullLengthWindowIsFullAttention(t *testing.T) {
	ck := openSynth(t)
	m := newModel(t, ck.Config, &ck.Weights)
	toks := tokens(20)
	wide, err := m.WithAttention(model.AttentionChange{Window: len(toks)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := wide.Logits(context.Background(), toks, len(toks), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ck.Config
	cfg.Sliding = make([]bool, cfg.NumLayers) // all full
	want, err := newModel(t, cfg, &ck.Weights).Logits(context.Background(), toks, len(toks), nil)
	if err != nil {
		t.Fatal(err)
	}
	var diff float64
	for i := range want {
		diff = math.Max(diff, math.Abs(float64(got[i]-want[i])))
	}
	if diff > 1e-5 {
		t.Errorf("max |Δlogit| %g between a full-length window and full attention", diff)
	}
	t.Logf("max |Δlogit| = %g (bitwise equal: %v)", diff, slices.Equal(got, want))
	// And the narrow default window is not full attention.
	base, _ := m.Logits(context.Background(), toks, len(toks), nil)
	if slices.Equal(base, want) {
		t.Error("the window of 4 changed nothing")
	}
	if _, err := m.WithAttention(model.AttentionChange{Window: -1}); err == nil {
		t.Error("negative window accepted")
	}
}

func TestKLAndPerplexity(t *testing.T) {
	p := []float32{1, 2, 3}
	if kl := KL(p, p); kl != 0 {
		t.Errorf("KL(p‖p) = %g", kl)
	}
	// Uniform logits: perplexity = vocab.
	logits := make([]float32, 3*5)
	if pp := Perplexity(logits, []int32{0, 1, 2}, 5); math.Abs(pp-5) > 1e-12 {
		t.Errorf("uniform perplexity %g, want 5", pp)
	}
	q := []float32{3, 2, 1}
	lp, lq := logSoftmax(p), logSoftmax(q)
	var want float64
	for i := range lp {
		want += math.Exp(lp[i]) * (lp[i] - lq[i])
	}
	if got := KL(p, q); math.Abs(got-want) > 1e-15 || got <= 0 {
		t.Errorf("KL = %g, want %g", got, want)
	}
}

func TestSVG(t *testing.T) {
	var b bytes.Buffer
	layers := []LayerMass{{Layer: 0, Sliding: true, Heads: []HeadMass{{Sink: 0.9, Window: 0.1}, {Sink: 0.1, Window: 0.9}}}}
	if err := WriteSVG(&b, layers, "a <title>"); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	if !strings.HasPrefix(s, "<svg") || !strings.Contains(s, "0.90") || !strings.Contains(s, "a &lt;title&gt;") || !strings.HasSuffix(s, "</svg>\n") {
		t.Errorf("svg:\n%s", s)
	}
}
