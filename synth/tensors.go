package synth

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
)

// Tensor describes one tensor of a safetensors file.
type Tensor struct {
	Name  string
	DType string // "BF16" or "U8"
	Shape []int64
}

// Size is the tensor's data size in bytes.
func (t Tensor) Size() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	if t.DType == "BF16" {
		n *= 2
	}
	return n
}

// source is one logical weight, generated as a stream of Gaussian values
// from a PCG seeded by (seed, hash of its HF name). Both layouts read the
// same sources, so HF and original/ files hold the same numbers, and every
// tensor is independent of which others are written or in what order.
type source struct {
	name string // HF tensor name, or for experts the HF base name without _blocks/_scales
	rows int64  // experts: E·R rows of cols inputs; others: element count = rows·cols
	cols int64
	mean float64
	std  float64
	mx   bool // MXFP4 expert weight (encoded per row), else BF16
}

func (s *source) rng(seed uint64) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(s.name))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// partKind says which bytes of a source a tensor holds.
type partKind int

const (
	partBF16   partKind = iota // the values as BF16
	partBlocks                 // MXFP4 codes, [rows, cols/32, 16]
	partScales                 // E8M0 scales, [rows, cols/32]
)

type part struct {
	src  *source
	kind partKind
}

// size is the part's byte count.
func (p part) size() int64 {
	n := p.src.rows * p.src.cols
	switch p.kind {
	case partBF16:
		return 2 * n
	case partBlocks:
		return n / 2
	default:
		return n / 32
	}
}

// entry is a tensor plus where its bytes come from: the concatenation of
// its parts (several only for original/'s fused qkv).
type entry struct {
	Tensor
	parts []part
}

// layerSources holds one layer's logical weights.
type layerSources struct {
	attnNorm, q, qb, k, kb, v, vb, o, ob, sinks *source
	mlpNorm, router, routerB                    *source
	gateUp, gateUpB, down, downB                *source
}

// Weight scales: projections get std 1/sqrt(fan_in) so every matmul output
// has unit variance; the two projections that write into the residual
// stream (o_proj, down_proj) are further scaled by 1/sqrt(2L), so the
// residual grows to about rms √2 over all layers; norm gains sit near 1;
// biases are small; sinks ~ N(0, 1) like attention logits; embeddings
// N(0, 1).
const biasStd = 0.05

type sources struct {
	c                Config
	embed, norm, lmH *source
	layers           []layerSources
}

func newSources(c Config) *sources {
	H, I, E := int64(c.Hidden), int64(c.Intermediate), int64(c.Experts)
	qw, kvw := int64(c.Heads*c.HeadDim), int64(c.KVHeads*c.HeadDim)
	resid := 1 / math.Sqrt(2*float64(c.Layers))
	g := func(name string, rows, cols int64, mean, std float64) *source {
		return &source{name: name, rows: rows, cols: cols, mean: mean, std: std}
	}
	s := &sources{
		c:     c,
		embed: g("model.embed_tokens.weight", int64(c.Vocab), H, 0, 1),
		norm:  g("model.norm.weight", 1, H, 1, 0.1),
		lmH:   g("lm_head.weight", int64(c.Vocab), H, 0, 1/math.Sqrt(float64(H))),
	}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		a := p + "self_attn."
		m := p + "mlp."
		s.layers = append(s.layers, layerSources{
			attnNorm: g(p+"input_layernorm.weight", 1, H, 1, 0.1),
			q:        g(a+"q_proj.weight", qw, H, 0, 1/math.Sqrt(float64(H))),
			qb:       g(a+"q_proj.bias", 1, qw, 0, biasStd),
			k:        g(a+"k_proj.weight", kvw, H, 0, 1/math.Sqrt(float64(H))),
			kb:       g(a+"k_proj.bias", 1, kvw, 0, biasStd),
			v:        g(a+"v_proj.weight", kvw, H, 0, 1/math.Sqrt(float64(H))),
			vb:       g(a+"v_proj.bias", 1, kvw, 0, biasStd),
			o:        g(a+"o_proj.weight", H, qw, 0, resid/math.Sqrt(float64(qw))),
			ob:       g(a+"o_proj.bias", 1, H, 0, biasStd*resid),
			sinks:    g(a+"sinks", 1, int64(c.Heads), 0, 1),
			mlpNorm:  g(p+"post_attention_layernorm.weight", 1, H, 1, 0.1),
			router:   g(m+"router.weight", E, H, 0, 1/math.Sqrt(float64(H))),
			routerB:  g(m+"router.bias", 1, E, 0, biasStd),
			gateUp: &source{name: m + "experts.gate_up_proj", rows: E * 2 * I, cols: H,
				std: 1 / math.Sqrt(float64(H)), mx: true},
			gateUpB: g(m+"experts.gate_up_proj_bias", E, 2*I, 0, biasStd),
			down: &source{name: m + "experts.down_proj", rows: E * H, cols: I,
				std: resid / math.Sqrt(float64(I)), mx: true},
			downB: g(m+"experts.down_proj_bias", E, H, 0, biasStd*resid),
		})
	}
	return s
}

func bf16Entry(name string, shape []int64, srcs ...*source) entry {
	e := entry{Tensor: Tensor{Name: name, DType: "BF16", Shape: shape}}
	for _, s := range srcs {
		e.parts = append(e.parts, part{src: s, kind: partBF16})
	}
	return e
}

// mxEntries returns the blocks and scales tensors of an expert weight
// [E, R, C]: blocks [E, R, C/32, 16], scales [E, R, C/32].
func mxEntries(blocksName, scalesName string, s *source, E, R int64) []entry {
	G := s.cols / 32
	return []entry{
		{Tensor{blocksName, "U8", []int64{E, R, G, 16}}, []part{{s, partBlocks}}},
		{Tensor{scalesName, "U8", []int64{E, R, G}}, []part{{s, partScales}}},
	}
}

func sortEntries(es []entry) []entry {
	sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
	return es
}

// hfEntries lists the HF layout (spec §3.1), sorted by name.
func (s *sources) hfEntries() []entry {
	c := s.c
	H, I, E, V := int64(c.Hidden), int64(c.Intermediate), int64(c.Experts), int64(c.Vocab)
	qw, kvw := int64(c.Heads*c.HeadDim), int64(c.KVHeads*c.HeadDim)
	es := []entry{
		bf16Entry(s.embed.name, []int64{V, H}, s.embed),
		bf16Entry(s.norm.name, []int64{H}, s.norm),
		bf16Entry(s.lmH.name, []int64{V, H}, s.lmH),
	}
	for l := range s.layers {
		L := &s.layers[l]
		p := fmt.Sprintf("model.layers.%d.mlp.experts.", l)
		es = append(es,
			bf16Entry(L.attnNorm.name, []int64{H}, L.attnNorm),
			bf16Entry(L.q.name, []int64{qw, H}, L.q),
			bf16Entry(L.qb.name, []int64{qw}, L.qb),
			bf16Entry(L.k.name, []int64{kvw, H}, L.k),
			bf16Entry(L.kb.name, []int64{kvw}, L.kb),
			bf16Entry(L.v.name, []int64{kvw, H}, L.v),
			bf16Entry(L.vb.name, []int64{kvw}, L.vb),
			bf16Entry(L.o.name, []int64{H, qw}, L.o),
			bf16Entry(L.ob.name, []int64{H}, L.ob),
			bf16Entry(L.sinks.name, []int64{int64(c.Heads)}, L.sinks),
			bf16Entry(L.mlpNorm.name, []int64{H}, L.mlpNorm),
			bf16Entry(L.router.name, []int64{E, H}, L.router),
			bf16Entry(L.routerB.name, []int64{E}, L.routerB),
			bf16Entry(L.gateUpB.name, []int64{E, 2 * I}, L.gateUpB),
			bf16Entry(L.downB.name, []int64{E, H}, L.downB),
		)
		es = append(es, mxEntries(p+"gate_up_proj_blocks", p+"gate_up_proj_scales", L.gateUp, E, 2*I)...)
		es = append(es, mxEntries(p+"down_proj_blocks", p+"down_proj_scales", L.down, E, H)...)
	}
	return sortEntries(es)
}

// originalEntries lists OpenAI's original/ layout (spec §3.2), sorted by
// name: fused qkv, block.N names, the same bytes as the HF layout.
func (s *sources) originalEntries() []entry {
	c := s.c
	H, I, E, V := int64(c.Hidden), int64(c.Intermediate), int64(c.Experts), int64(c.Vocab)
	qw, kvw := int64(c.Heads*c.HeadDim), int64(c.KVHeads*c.HeadDim)
	es := []entry{
		bf16Entry("embedding.weight", []int64{V, H}, s.embed),
		bf16Entry("norm.scale", []int64{H}, s.norm),
		bf16Entry("unembedding.weight", []int64{V, H}, s.lmH),
	}
	for l := range s.layers {
		L := &s.layers[l]
		p := fmt.Sprintf("block.%d.", l)
		es = append(es,
			bf16Entry(p+"attn.norm.scale", []int64{H}, L.attnNorm),
			bf16Entry(p+"attn.qkv.weight", []int64{qw + 2*kvw, H}, L.q, L.k, L.v),
			bf16Entry(p+"attn.qkv.bias", []int64{qw + 2*kvw}, L.qb, L.kb, L.vb),
			bf16Entry(p+"attn.out.weight", []int64{H, qw}, L.o),
			bf16Entry(p+"attn.out.bias", []int64{H}, L.ob),
			bf16Entry(p+"attn.sinks", []int64{int64(c.Heads)}, L.sinks),
			bf16Entry(p+"mlp.norm.scale", []int64{H}, L.mlpNorm),
			bf16Entry(p+"mlp.gate.weight", []int64{E, H}, L.router),
			bf16Entry(p+"mlp.gate.bias", []int64{E}, L.routerB),
			bf16Entry(p+"mlp.mlp1_bias", []int64{E, 2 * I}, L.gateUpB),
			bf16Entry(p+"mlp.mlp2_bias", []int64{E, H}, L.downB),
		)
		es = append(es, mxEntries(p+"mlp.mlp1_weight.blocks", p+"mlp.mlp1_weight.scales", L.gateUp, E, 2*I)...)
		es = append(es, mxEntries(p+"mlp.mlp2_weight.blocks", p+"mlp.mlp2_weight.scales", L.down, E, H)...)
	}
	return sortEntries(es)
}

// originalDTypes is original/dtypes.json: the U8 tensors are labelled by
// what they hold.
func originalDTypes(es []entry) map[string]string {
	m := make(map[string]string, len(es))
	for _, e := range es {
		switch {
		case e.parts[0].kind == partBlocks:
			m[e.Name] = "FP4"
		case e.parts[0].kind == partScales:
			m[e.Name] = "UE8"
		default:
			m[e.Name] = e.DType
		}
	}
	return m
}

func tensorsOf(es []entry) []Tensor {
	ts := make([]Tensor, len(es))
	for i, e := range es {
		ts[i] = e.Tensor
	}
	return ts
}

// HFTensors lists the tensors of the HF layout for c, sorted by name.
func HFTensors(c Config) []Tensor { return tensorsOf(newSources(c).hfEntries()) }

// OriginalTensors lists the tensors of the original/ layout for c, sorted
// by name.
func OriginalTensors(c Config) []Tensor { return tensorsOf(newSources(c).originalEntries()) }
