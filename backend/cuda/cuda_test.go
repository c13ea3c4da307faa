package cuda_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gptoss/gptoss/attention"
	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/backend/cpu"
	"github.com/gptoss/gptoss/backend/cuda"
	"github.com/gptoss/gptoss/loader"
)

// gpu opens GPU 0 or skips: on a machine without one these tests say so
// and never pass by default.
func gpu(t *testing.T) *cuda.Backend {
	t.Helper()
	b, err := cuda.New(0)
	if err != nil {
		t.Skipf("no CUDA device: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// pair runs every op on the CPU backend (the oracle) and on the GPU.
type pair struct {
	t   *testing.T
	cpu *cpu.Backend
	gpu *cuda.Backend
	rng *rand.Rand
}

type both struct{ c, g backend.Tensor }

func newPair(t *testing.T) *pair {
	return &pair{t: t, gpu: gpu(t), cpu: cpu.New(), rng: rand.New(rand.NewPCG(1, 2))}
}

func (p *pair) bf16(shape []int, scale float64) loader.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	b := make([]byte, 2*n)
	for i := range n {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(math.Float32bits(float32(p.rng.NormFloat64()*scale))>>16))
	}
	return loader.Tensor{Name: fmt.Sprintf("w%v", shape), DType: loader.BF16, Shape: shape, Data: b}
}

func (p *pair) weight(shape []int, scale float64) both {
	w := p.bf16(shape, scale)
	c, err := p.cpu.Weight(w)
	if err != nil {
		p.t.Fatal(err)
	}
	g, err := p.gpu.Weight(w)
	if err != nil {
		p.t.Fatal(err)
	}
	return both{c, g}
}

// acts makes [rows, cols] activations with the same random values on both
// backends, through Embed (the interface has no write op).
func (p *pair) acts(rows, cols int, scale float64) both {
	table := p.weight([]int{rows, cols}, scale)
	a := both{p.cpu.NewActivations(rows, cols), p.gpu.NewActivations(rows, cols)}
	tokens := make([]int32, rows)
	for i := range tokens {
		tokens[i] = int32(i)
	}
	p.do("embed", p.cpu.Embed(a.c, table.c, tokens), p.gpu.Embed(a.g, table.g, tokens))
	return a
}

func (p *pair) empty(rows, cols int) both {
	return both{p.cpu.NewActivations(rows, cols), p.gpu.NewActivations(rows, cols)}
}

func (p *pair) do(op string, ec, eg error) {
	p.t.Helper()
	if ec != nil || eg != nil {
		p.t.Fatalf("%s: cpu %v, cuda %v", op, ec, eg)
	}
}

// check compares the first n rows by normalised mean squared error,
// Σ(g−c)²/Σc², the measure ggml's test-backend-ops applies per op.
func (p *pair) check(op string, t both, n int, bound float64) {
	p.t.Helper()
	cols := t.c.Shape()[1]
	c, g := make([]float32, n*cols), make([]float32, n*cols)
	p.do(op+" read", p.cpu.ReadFloats(c, t.c, n), p.gpu.ReadFloats(g, t.g, n))
	var num, den float64
	for i := range c {
		d := float64(g[i] - c[i])
		num += d * d
		den += float64(c[i]) * float64(c[i])
	}
	nmse := num / math.Max(den, 1e-30)
	if nmse > bound || math.IsNaN(nmse) {
		p.t.Errorf("%s: NMSE %.3g exceeds %.3g", op, nmse, bound)
	}
}

func TestEmbedRMSNormAddCopy(t *testing.T) {
	p := newPair(t)
	for _, sh := range [][2]int{{1, 7}, {5, 45}, {13, 2880}} {
		n, h := sh[0], sh[1]
		x := p.acts(n, h, 1)
		p.check(fmt.Sprintf("embed %v", sh), x, n, 0)
		gain := p.weight([]int{h}, 1)
		y := p.empty(n, h)
		p.do("rmsnorm", p.cpu.RMSNorm(y.c, x.c, gain.c, n, 1e-5), p.gpu.RMSNorm(y.g, x.g, gain.g, n, 1e-5))
		p.check(fmt.Sprintf("rmsnorm %v", sh), y, n, 1e-12)
		p.do("add", p.cpu.Add(y.c, x.c, n), p.gpu.Add(y.g, x.g, n))
		p.check(fmt.Sprintf("add %v", sh), y, n, 1e-14)
		rows := []int{n - 1, 0, n / 2}
		z := p.empty(3, h)
		p.do("copyrows", p.cpu.CopyRows(z.c, y.c, rows), p.gpu.CopyRows(z.g, y.g, rows))
		p.check(fmt.Sprintf("copyrows %v", sh), z, 3, 0)
	}
}

func TestLinear(t *testing.T) {
	p := newPair(t)
	checkLinear(p, "linear", [][3]int{{1, 67, 45}, {3, 67, 48}, {8, 129, 64}, {9, 33, 17}, {70, 201, 96}, {130, 64, 2880},
		{1, 5, 2880}, {2, 2880, 2880}, {1, 4099, 72}}, 1e-10)
}

// TestLinearTensorCores checks the tensor-core product against the CPU.
// Its activations carry about 16 mantissa bits (two BF16 halves), so the
// bound is looser than the float32 kernel's 1e-10 but far below what BF16
// activations alone would give (around 1e-5).
func TestLinearTensorCores(t *testing.T) {
	p := newPair(t)
	p.gpu.SetTensorCores(true)
	checkLinear(p, "tensor-core linear", [][3]int{{16, 64, 64}, {17, 67, 45}, {70, 201, 96}, {130, 64, 2880}, {65, 2880, 4096}, {200, 33, 17}}, 1e-9)
}

// checkLinear compares Linear of n rows by an [out, in] matrix, with and
// without a bias, for each {n, out, in}, within the normalised-MSE bound.
func checkLinear(p *pair, label string, shapes [][3]int, bound float64) {
	for _, s := range shapes {
		n, out, in := s[0], s[1], s[2]
		x := p.acts(n, in, 1)
		w := p.weight([]int{out, in}, 0.1)
		bias := p.weight([]int{out}, 0.1)
		y := p.empty(n, out)
		p.do("linear", p.cpu.Linear(y.c, x.c, w.c, bias.c, n), p.gpu.Linear(y.g, x.g, w.g, bias.g, n))
		p.check(fmt.Sprintf("%s n=%d %dx%d", label, n, out, in), y, n, bound)
		p.do("linear", p.cpu.Linear(y.c, x.c, w.c, nil, n), p.gpu.Linear(y.g, x.g, w.g, nil, n))
		p.check(fmt.Sprintf("%s n=%d %dx%d no bias", label, n, out, in), y, n, bound)
	}
}

func TestRoPETopK(t *testing.T) {
	p := newPair(t)
	rope, err := attention.NewYaRN(64, attention.YaRNParams{Theta: 150000, Factor: 32, BetaFast: 32, BetaSlow: 1, OriginalCtx: 4096})
	if err != nil {
		t.Fatal(err)
	}
	// Within one step the second call reuses the staged cos/sin rows of
	// the first (as k does q's), the third has other positions and must
	// not; reads come only after all three.
	segs := []backend.Segment{{Row: 0, Pos: 0, Len: 4}, {Row: 4, Pos: 100000, Len: 3}}
	var xs []both
	for i, heads := range []int{3, 1, 3} {
		if i == 2 {
			segs[1].Pos = 5
		}
		x := p.acts(7, heads*64, 1)
		p.do("rope", p.cpu.RoPE(x.c, heads, rope, segs), p.gpu.RoPE(x.g, heads, rope, segs))
		xs = append(xs, x)
	}
	for i, x := range xs {
		p.check(fmt.Sprintf("rope call %d", i), x, 7, 1e-12)
	}

	for _, s := range [][3]int{{1, 32, 4}, {11, 32, 4}, {5, 7, 3}, {300, 128, 4}} {
		n, e, k := s[0], s[1], s[2]
		l := p.acts(n, e, 1)
		idx := both{p.cpu.NewIndices(n, k), p.gpu.NewIndices(n, k)}
		w := p.empty(n, k)
		p.do("topk", p.cpu.TopK(idx.c, w.c, l.c, k, n), p.gpu.TopK(idx.g, w.g, l.g, k, n))
		ic, ig := make([]int32, n*k), make([]int32, n*k)
		p.do("topk read", p.cpu.ReadInts(ic, idx.c, n), p.gpu.ReadInts(ig, idx.g, n))
		for i := range ic {
			if ic[i] != ig[i] {
				t.Fatalf("topk %v: indices %v, want %v", s, ig, ic)
			}
		}
		p.check(fmt.Sprintf("topk weights %v", s), w, n, 1e-12)
	}
}

// TestMoE covers the per-pair decode kernels and the grouped product
// (from 64 pairs), with an odd expert count and intermediate size.
func TestMoE(t *testing.T) {
	p := newPair(t)
	const experts, k, hidden, inter = 5, 3, 96, 64
	mk := func(rows, cols int) both {
		groups := cols / 32
		blocks := make([]byte, experts*rows*groups*16)
		scales := make([]byte, experts*rows*groups)
		for i := range blocks {
			blocks[i] = byte(p.rng.IntN(256))
		}
		for i := range scales {
			scales[i] = byte(118 + p.rng.IntN(10))
		}
		w := loader.ExpertWeights{
			Blocks: loader.Tensor{Name: "blocks", DType: loader.U8, Shape: []int{experts, rows, groups, 16}, Data: blocks},
			Scales: loader.Tensor{Name: "scales", DType: loader.U8, Shape: []int{experts, rows, groups}, Data: scales},
			Bias:   p.bf16([]int{experts, rows}, 0.1),
		}
		c, err := p.cpu.Experts(w)
		if err != nil {
			t.Fatal(err)
		}
		g, err := p.gpu.Experts(w)
		if err != nil {
			t.Fatal(err)
		}
		return both{c, g}
	}
	gu, dn := mk(2*inter, hidden), mk(hidden, inter)
	moeCase(p, gu, dn, experts, k, hidden, 1e-9)
	// The tensor-core grouped product (from 64 pairs) carries split-BF16
	// activations: the bound of the tensor-core Linear.
	p.gpu.SetTensorCores(true)
	defer p.gpu.SetTensorCores(false)
	moeCase(p, gu, dn, experts, k, hidden, 1e-9)
}

func moeCase(p *pair, gu, dn both, experts, k, hidden int, bound float64) {
	for _, n := range []int{1, 2, 21, 50} {
		x := p.acts(n, hidden, 1)
		logits := p.acts(n, experts, 1)
		idx := both{p.cpu.NewIndices(n, k), p.gpu.NewIndices(n, k)}
		w := p.empty(n, k)
		p.do("topk", p.cpu.TopK(idx.c, w.c, logits.c, k, n), p.gpu.TopK(idx.g, w.g, logits.g, k, n))
		y := p.empty(n, hidden)
		act := backend.SwiGLU{Alpha: 1.702, Limit: 7}
		p.do("moe", p.cpu.MoE(y.c, x.c, idx.c, w.c, gu.c, dn.c, act, n), p.gpu.MoE(y.g, x.g, idx.g, w.g, gu.g, dn.g, act, n))
		p.check(fmt.Sprintf("moe n=%d (%d pairs)", n, n*k), y, n, bound)
	}
}

// TestAttention runs two sequences through a prefill chunk and decode
// steps on a sliding layer (window 5, so the ring wraps) and a full one,
// with grouped query heads. The 300-row chunk takes the tiled kernel while
// the other sequence's row in the same batch takes the split-K ones.
func TestAttention(t *testing.T) {
	p := newPair(t)
	attentionCase(t, p, p.weight([]int{6}, 1), 2, 64, 5, 600, [][]int{{7, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, {9, 2}, {300, 1}, {1, 1}})
}

// TestAttentionTiled checks the tiled prefill kernel against the CPU on
// odd shapes: segments that end inside a tile, one exactly at the
// 16-row threshold, windows narrower and wider than a 32-key tile, a head
// dimension that is not a multiple of 32, and chunks that start deep in a
// sequence (keys from the cache and from the chunk's own rows).
//
// The last case has every sink at −∞ (the no-sinks ablation), which the
// kernels must treat as an empty softmax term rather than a start value.
func TestAttentionTiled(t *testing.T) {
	p := newPair(t)
	for _, c := range []struct {
		heads, kvHeads, hd, window int
		noSinks                    bool
	}{
		{6, 2, 64, 5, false}, {6, 3, 40, 45, false}, {4, 4, 64, 33, false}, {8, 1, 72, 128, false}, {6, 2, 64, 45, true},
	} {
		t.Run(fmt.Sprintf("h%d_kv%d_hd%d_w%d_nosinks%v", c.heads, c.kvHeads, c.hd, c.window, c.noSinks), func(t *testing.T) {
			sinks := p.weight([]int{c.heads}, 1)
			if c.noSinks {
				data := make([]byte, 2*c.heads)
				for i := range c.heads {
					data[2*i], data[2*i+1] = 0x80, 0xFF // BF16 −∞
				}
				w := loader.Tensor{Name: "no sinks", DType: loader.BF16, Shape: []int{c.heads}, Data: data}
				cs, err := p.cpu.Weight(w)
				if err != nil {
					t.Fatal(err)
				}
				gs, err := p.gpu.Weight(w)
				if err != nil {
					t.Fatal(err)
				}
				sinks = both{cs, gs}
			}
			attentionCase(t, p, sinks, c.kvHeads, c.hd, c.window, 400,
				[][]int{{37, 1, 16}, {1, 70, 15}, {33, 2, 1}, {1, 1, 100}, {65, 17, 1}})
		})
	}
}

// attentionCase runs len(steps[0]) sequences through the given steps
// (each step lists every sequence's row count) on a sliding layer and a
// full one, comparing every output with the CPU backend. There are as
// many query heads as sinks.
func attentionCase(t *testing.T, p *pair, sinks both, kvHeads, hd, window, maxLen int, steps [][]int) {
	t.Helper()
	heads := sinks.c.Shape()[0]
	spec := backend.KVSpec{Layers: 2, KVHeads: kvHeads, HeadDim: hd, Sliding: []bool{true, false}, Window: window, MaxLen: maxLen}
	caches := make([][2]backend.KVCache, len(steps[0])) // [sequence][cpu, gpu]
	for s := range caches {
		var err error
		if caches[s][0], err = p.cpu.NewKVCache(spec); err != nil {
			t.Fatal(err)
		}
		if caches[s][1], err = p.gpu.NewKVCache(spec); err != nil {
			t.Fatal(err)
		}
	}
	for _, lens := range steps {
		n := 0
		var sc, sg []backend.Segment
		for s, l := range lens {
			pos := caches[s][0].Len()
			sc = append(sc, backend.Segment{Cache: caches[s][0], Row: n, Pos: pos, Len: l})
			sg = append(sg, backend.Segment{Cache: caches[s][1], Row: n, Pos: pos, Len: l})
			n += l
		}
		for layer := range 2 {
			q, kk, v := p.acts(n, heads*hd, 1), p.acts(n, kvHeads*hd, 1), p.acts(n, kvHeads*hd, 1)
			o := p.empty(n, heads*hd)
			p.do("attention", p.cpu.Attention(o.c, q.c, kk.c, v.c, sinks.c, layer, 0.125, sc),
				p.gpu.Attention(o.g, q.g, kk.g, v.g, sinks.g, layer, 0.125, sg))
			p.check(fmt.Sprintf("attention lens %v layer %d at %d", lens, layer, sc[0].Pos), o, n, 1e-10)
		}
		for s, l := range lens {
			for _, c := range caches[s] {
				if err := c.SetLen(c.Len() + l); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}
