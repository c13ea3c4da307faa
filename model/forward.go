package model

import (
	"fmt"
	"math"

	"github.com/gptoss/gptoss/backend"
)

// Batch is one forward pass: tokens from one or more sequences, each
// sequence's rows described by a segment (its cache, first row, first
// position, row count). Prefill is a long segment, decode a segment of one.
type Batch struct {
	Tokens   []int32
	Segments []backend.Segment
	// LogitRows lists the rows whose logits are wanted, in output order
	// (decode: the last row of each segment; the logits command: all).
	LogitRows []int
}

// Forward runs the model over a batch (spec §5). It writes len(LogitRows)
// rows of vocabulary logits to logits and advances each segment's cache by
// its length. trace may be nil.
func (m *Model) Forward(st *State, b Batch, logits []float32, trace Tracer) error {
	c, be := m.Config, m.be
	n := len(b.Tokens)
	if err := m.checkBatch(st, b, len(logits)); err != nil {
		return err
	}
	eps := float32(c.RMSNormEps)
	scale := float32(1 / math.Sqrt(float64(c.HeadDim)))

	// 1. Embedding.
	if err := be.Embed(st.x, m.embed, b.Tokens); err != nil {
		return fmt.Errorf("model: embed: %w", err)
	}
	trace.emit("embed", -1, st.x, n)

	// 2. Layers.
	for l := range m.layers {
		if err := m.block(l, st, b, scale, trace); err != nil {
			return fmt.Errorf("model: layer %d: %w", l, err)
		}
	}

	// 3. Final norm and unembedding, only for the rows whose logits are
	// wanted: the unembedding is the largest matrix of the model.
	if err := be.RMSNorm(st.h, st.x, m.finalNorm, n, eps); err != nil {
		return fmt.Errorf("model: final norm: %w", err)
	}
	trace.emit("final_normed", -1, st.h, n)
	out := len(b.LogitRows)
	if out > 0 {
		if err := be.CopyRows(st.picked, st.h, b.LogitRows); err != nil {
			return fmt.Errorf("model: %w", err)
		}
		if err := be.Linear(st.logits, st.picked, m.lmHead, nil, out); err != nil {
			return fmt.Errorf("model: unembedding: %w", err)
		}
		if err := be.ReadFloats(logits, st.logits, out); err != nil {
			return fmt.Errorf("model: %w", err)
		}
	}
	for _, s := range b.Segments {
		if err := s.Cache.SetLen(s.Pos + s.Len); err != nil {
			return fmt.Errorf("model: %w", err)
		}
	}
	return nil
}

func (m *Model) checkBatch(st *State, b Batch, nLogits int) error {
	n := len(b.Tokens)
	if n == 0 || n > st.Rows {
		return fmt.Errorf("model: batch of %d tokens for a state of %d rows", n, st.Rows)
	}
	row := 0
	for i, s := range b.Segments {
		if s.Row != row || s.Len <= 0 || s.Cache == nil {
			return fmt.Errorf("model: segment %d (row %d, length %d) does not continue at row %d", i, s.Row, s.Len, row)
		}
		if s.Pos != s.Cache.Len() {
			return fmt.Errorf("model: segment %d starts at position %d but its cache holds %d", i, s.Pos, s.Cache.Len())
		}
		row += s.Len
	}
	if row != n {
		return fmt.Errorf("model: segments cover %d rows of %d tokens", row, n)
	}
	for _, r := range b.LogitRows {
		if r < 0 || r >= n {
			return fmt.Errorf("model: logit row %d outside the batch of %d", r, n)
		}
	}
	if nLogits < len(b.LogitRows)*m.Config.VocabSize {
		return fmt.Errorf("model: logits buffer of %d for %d rows of %d", nLogits, len(b.LogitRows), m.Config.VocabSize)
	}
	for _, t := range b.Tokens {
		if t < 0 || int(t) >= m.Config.VocabSize {
			return fmt.Errorf("model: token %d outside the vocabulary of %d", t, m.Config.VocabSize)
		}
	}
	return nil
}

// block is one transformer layer, spec §5 step 2, steps a–i in order.
func (m *Model) block(l int, st *State, b Batch, scale float32, trace Tracer) error {
	c, be, w := m.Config, m.be, &m.layers[l]
	n := len(b.Tokens)
	eps := float32(c.RMSNormEps)

	// a. attention pre-norm; b. q, k, v with biases
	if err := be.RMSNorm(st.h, st.x, w.attnNorm, n, eps); err != nil {
		return err
	}
	qkv := [3]backend.Tensor{st.q, st.k, st.v}
	wqkv := [3]backend.Tensor{w.q, w.k, w.v}
	bqkv := [3]backend.Tensor{w.qb, w.kb, w.vb}
	if err := backend.Linear3Of(be, st.h, n, qkv, wqkv, bqkv); err != nil {
		return err
	}
	// c. YaRN RoPE on every q and k head
	if err := be.RoPE(st.q, c.NumHeads, m.rope, b.Segments); err != nil {
		return err
	}
	if err := be.RoPE(st.k, c.NumKVHeads, m.rope, b.Segments); err != nil {
		return err
	}
	trace.emit("q", l, st.q, n)
	trace.emit("k", l, st.k, n)
	trace.emit("v", l, st.v, n)
	// d, e. scaled scores, causal or sliding mask, softmax with the sink;
	// the rows' k and v join the cache
	if err := be.Attention(st.o, st.q, st.k, st.v, w.sinks, l, scale, b.Segments); err != nil {
		return err
	}
	// f. output projection, residual
	if err := be.Linear(st.attn, st.o, w.o, w.ob, n); err != nil {
		return err
	}
	trace.emit("attn_out", l, st.attn, n)
	if err := be.Add(st.x, st.attn, n); err != nil {
		return err
	}
	trace.emit("resid_mid", l, st.x, n)

	// g. MoE pre-norm; h. router, top-k, softmax over the chosen k
	if err := be.RMSNorm(st.h, st.x, w.mlpNorm, n, eps); err != nil {
		return err
	}
	if err := be.Linear(st.router, st.h, w.router, w.routerB, n); err != nil {
		return err
	}
	trace.emit("router_logits", l, st.router, n)
	if err := be.TopK(st.topIdx, st.topW, st.router, c.ExpertsPerToken, n); err != nil {
		return err
	}
	trace.emit("topk_idx", l, st.topIdx, n)
	trace.emit("topk_w", l, st.topW, n)

	// i. the chosen experts with the clamped SwiGLU, weighted sum, residual
	if err := be.MoE(st.moe, st.h, st.topIdx, st.topW, w.gateUp, w.down, m.act, n); err != nil {
		return err
	}
	trace.emit("moe_out", l, st.moe, n)
	if err := be.Add(st.x, st.moe, n); err != nil {
		return err
	}
	trace.emit("resid_out", l, st.x, n)
	return nil
}

func (t Tracer) emit(name string, layer int, x backend.Tensor, n int) {
	if t == nil {
		return
	}
	if layer >= 0 {
		name = fmt.Sprintf("l%d_%s", layer, name)
	}
	t(name, x, n)
}
