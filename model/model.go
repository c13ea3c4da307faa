// Package model is the gpt-oss transformer (spec §5) written against the
// backend interface: it holds opaque weight handles and calls the backend's
// ops in the order of the forward pass. It contains no kernel code.
package model

import (
	"fmt"

	"github.com/gptoss/gptoss/attention"
	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/loader"
)

// Model is a loaded gpt-oss model bound to one backend.
type Model struct {
	Config loader.Config
	be     backend.Backend
	rope   *attention.RoPE
	act    backend.SwiGLU

	embed, finalNorm, lmHead backend.Tensor
	layers                   []layer
}

type layer struct {
	attnNorm, mlpNorm backend.Tensor
	q, k, v, o        backend.Tensor
	qb, kb, vb, ob    backend.Tensor
	sinks             backend.Tensor
	router, routerB   backend.Tensor
	gateUp, down      backend.Tensor
}

// New binds the checkpoint's weights to a backend.
func New(be backend.Backend, cfg loader.Config, w *loader.Weights) (*Model, error) {
	rope, err := attention.NewYaRN(cfg.HeadDim, attention.YaRNParams{
		Theta: cfg.RopeTheta, Factor: cfg.YarnFactor, BetaFast: cfg.YarnBetaFast,
		BetaSlow: cfg.YarnBetaSlow, OriginalCtx: cfg.InitialContext,
	})
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if len(w.Layers) != cfg.NumLayers {
		return nil, fmt.Errorf("model: %d layers of weights for %d in the config", len(w.Layers), cfg.NumLayers)
	}
	m := &Model{
		Config: cfg, be: be, rope: rope,
		act:    backend.SwiGLU{Alpha: float32(cfg.SwigluAlpha), Limit: float32(cfg.SwigluLimit)},
		layers: make([]layer, cfg.NumLayers),
	}
	// bind turns stored tensors into backend handles, keeping the first error.
	var bindErr error
	bind := func(t loader.Tensor) backend.Tensor {
		if bindErr != nil {
			return nil
		}
		h, err := be.Weight(t)
		bindErr = err
		return h
	}
	bindExperts := func(e loader.ExpertWeights) backend.Tensor {
		if bindErr != nil {
			return nil
		}
		h, err := be.Experts(e)
		bindErr = err
		return h
	}
	m.embed, m.finalNorm, m.lmHead = bind(w.Embed), bind(w.FinalNorm), bind(w.LMHead)
	for l, lw := range w.Layers {
		m.layers[l] = layer{
			attnNorm: bind(lw.AttnNorm), mlpNorm: bind(lw.MLPNorm),
			q: bind(lw.Q), k: bind(lw.K), v: bind(lw.V), o: bind(lw.O),
			qb: bind(lw.QBias), kb: bind(lw.KBias), vb: bind(lw.VBias), ob: bind(lw.OBias),
			sinks:  bind(lw.Sinks),
			router: bind(lw.Router), routerB: bind(lw.RouterBias),
			gateUp: bindExperts(lw.GateUp), down: bindExperts(lw.Down),
		}
	}
	if bindErr != nil {
		return nil, fmt.Errorf("model: %w", bindErr)
	}
	return m, nil
}

// Backend is the backend the model runs on.
func (m *Model) Backend() backend.Backend { return m.be }

// NewCache allocates the KV cache of one sequence of at most maxLen
// positions.
func (m *Model) NewCache(maxLen int) (backend.KVCache, error) {
	c := m.Config
	return m.be.NewKVCache(backend.KVSpec{
		Layers: c.NumLayers, KVHeads: c.NumKVHeads, HeadDim: c.HeadDim,
		Sliding: c.Sliding, Window: c.SlidingWindow, MaxLen: maxLen,
	})
}

// State holds the activations of one forward pass of up to Rows tokens.
// Allocate it once and reuse it: the forward pass then allocates nothing.
type State struct {
	Rows int

	x, h         backend.Tensor // residual stream, normed input [rows, H]
	q, k, v, o   backend.Tensor // attention [rows, nh·hd | nkv·hd]
	attn         backend.Tensor // attention output after o_proj [rows, H]
	router       backend.Tensor // router logits [rows, E]
	topIdx, topW backend.Tensor // chosen experts and weights [rows, k]
	moe          backend.Tensor // expert mixture [rows, H]
	picked       backend.Tensor // final-normed rows whose logits are wanted
	logits       backend.Tensor // [rows, V]
}

// NewState allocates activations for batches of up to rows tokens.
func (m *Model) NewState(rows int) *State {
	c, be := m.Config, m.be
	qw, kw := c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
	return &State{
		Rows: rows,
		x:    be.NewActivations(rows, c.HiddenSize), h: be.NewActivations(rows, c.HiddenSize),
		q: be.NewActivations(rows, qw), k: be.NewActivations(rows, kw),
		v: be.NewActivations(rows, kw), o: be.NewActivations(rows, qw),
		attn:   be.NewActivations(rows, c.HiddenSize),
		router: be.NewActivations(rows, c.NumExperts),
		topIdx: be.NewIndices(rows, c.ExpertsPerToken), topW: be.NewActivations(rows, c.ExpertsPerToken),
		moe:    be.NewActivations(rows, c.HiddenSize),
		picked: be.NewActivations(rows, c.HiddenSize),
		logits: be.NewActivations(rows, c.VocabSize),
	}
}

// Tracer observes intermediate activations (the first n rows of t) under
// the names of the golden fixtures: embed, l{L}_attn_out, l{L}_resid_mid,
// l{L}_router_logits, l{L}_topk_idx, l{L}_topk_w, l{L}_moe_out,
// l{L}_resid_out, final_normed; and, for attention introspection (no
// fixtures), l{L}_q, l{L}_k (after RoPE) and l{L}_v.
type Tracer func(name string, t backend.Tensor, n int)
