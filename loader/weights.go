package loader

import (
	"fmt"
	"slices"
	"strings"
)

// mapper fetches tensors from a checkpoint and checks each against the
// dtype and shape the config implies, so that a wrong checkpoint fails at
// open with the tensor's name rather than as garbage logits later.
type mapper struct {
	c *Checkpoint
}

func (m mapper) get(name string, dt DType, shape ...int) (Tensor, error) {
	f, ok := m.c.byName[name]
	if !ok {
		if dq := dequantizedName(name); dq != "" {
			if _, ok := m.c.byName[dq]; ok {
				return Tensor{}, fmt.Errorf("loader: %s: dequantized BF16 experts are not supported: expects MXFP4 experts (%s)", dq, name)
			}
		}
		return Tensor{}, fmt.Errorf("loader: %s: missing (want %s %v)", name, dt, shape)
	}
	t, ok := f.Tensor(name)
	if !ok {
		return Tensor{}, fmt.Errorf("loader: %s: not in %s", name, f.Path)
	}
	if !slices.Equal(t.Shape, shape) {
		return Tensor{}, fmt.Errorf("loader: %s: shape %v, want %v", name, t.Shape, shape)
	}
	if t.DType != dt {
		return Tensor{}, fmt.Errorf("loader: %s: dtype %s, want %s", name, t.DType, dt)
	}
	return t, nil
}

// dequantizedName maps an MXFP4 blocks tensor name to the name the same
// weight has in a dequantized checkpoint, or "" for other tensors.
func dequantizedName(name string) string {
	for _, suf := range []string{"_blocks", ".blocks"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			return base
		}
	}
	return ""
}

// experts fetches one MXFP4 projection: rows out × (in/32) blocks.
func (m mapper) experts(blocks, scales, bias string, e, out, in int) (ExpertWeights, error) {
	var w ExpertWeights
	var err error
	if w.Blocks, err = m.get(blocks, U8, e, out, in/mxfp4Block, 16); err != nil {
		return w, err
	}
	if w.Scales, err = m.get(scales, U8, e, out, in/mxfp4Block); err != nil {
		return w, err
	}
	w.Bias, err = m.get(bias, BF16, e, out)
	return w, err
}

// layerNames lists one layer's tensor names in a layout. The original layout
// fuses q, k and v, so QKV/QKVBias are set and Q…VBias are empty there.
type layerNames struct {
	AttnNorm, QKV, QKVBias, Q, K, V, QBias, KBias, VBias string
	O, OBias, Sinks, MLPNorm, Router, RouterBias         string
	GateUpBlocks, GateUpScales, GateUpBias               string
	DownBlocks, DownScales, DownBias                     string
}

func hfNames(l int) layerNames {
	p := fmt.Sprintf("model.layers.%d.", l)
	return layerNames{
		AttnNorm: p + "input_layernorm.weight",
		Q:        p + "self_attn.q_proj.weight", QBias: p + "self_attn.q_proj.bias",
		K: p + "self_attn.k_proj.weight", KBias: p + "self_attn.k_proj.bias",
		V: p + "self_attn.v_proj.weight", VBias: p + "self_attn.v_proj.bias",
		O: p + "self_attn.o_proj.weight", OBias: p + "self_attn.o_proj.bias",
		Sinks:        p + "self_attn.sinks",
		MLPNorm:      p + "post_attention_layernorm.weight",
		Router:       p + "mlp.router.weight",
		RouterBias:   p + "mlp.router.bias",
		GateUpBlocks: p + "mlp.experts.gate_up_proj_blocks",
		GateUpScales: p + "mlp.experts.gate_up_proj_scales",
		GateUpBias:   p + "mlp.experts.gate_up_proj_bias",
		DownBlocks:   p + "mlp.experts.down_proj_blocks",
		DownScales:   p + "mlp.experts.down_proj_scales",
		DownBias:     p + "mlp.experts.down_proj_bias",
	}
}

func originalNames(l int) layerNames {
	p := fmt.Sprintf("block.%d.", l)
	return layerNames{
		AttnNorm: p + "attn.norm.scale",
		QKV:      p + "attn.qkv.weight", QKVBias: p + "attn.qkv.bias",
		O: p + "attn.out.weight", OBias: p + "attn.out.bias",
		Sinks:        p + "attn.sinks",
		MLPNorm:      p + "mlp.norm.scale",
		Router:       p + "mlp.gate.weight",
		RouterBias:   p + "mlp.gate.bias",
		GateUpBlocks: p + "mlp.mlp1_weight.blocks",
		GateUpScales: p + "mlp.mlp1_weight.scales",
		GateUpBias:   p + "mlp.mlp1_bias",
		DownBlocks:   p + "mlp.mlp2_weight.blocks",
		DownScales:   p + "mlp.mlp2_weight.scales",
		DownBias:     p + "mlp.mlp2_bias",
	}
}

// mapWeights builds Weights for layout, checking every tensor.
func mapWeights(c *Checkpoint, layout string, cfg *Config) (Weights, error) {
	m := mapper{c}
	H, V := cfg.HiddenSize, cfg.VocabSize
	var (
		w                        Weights
		err                      error
		embed, finalNorm, lmHead string
		names                    func(int) layerNames
	)
	switch layout {
	case LayoutHF:
		embed, finalNorm, lmHead, names = "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight", hfNames
	case LayoutOriginal:
		embed, finalNorm, lmHead, names = "embedding.weight", "norm.scale", "unembedding.weight", originalNames
	default:
		return w, fmt.Errorf("loader: unknown layout %q", layout)
	}
	if w.Embed, err = m.get(embed, BF16, V, H); err != nil {
		return w, err
	}
	w.Layers = make([]LayerWeights, cfg.NumLayers)
	for l := range w.Layers {
		if w.Layers[l], err = m.layer(names(l), cfg); err != nil {
			return w, err
		}
	}
	if w.FinalNorm, err = m.get(finalNorm, BF16, H); err != nil {
		return w, err
	}
	if w.LMHead, err = m.get(lmHead, BF16, V, H); err != nil {
		return w, err
	}
	return w, nil
}

func (m mapper) layer(n layerNames, cfg *Config) (LayerWeights, error) {
	H, I, E := cfg.HiddenSize, cfg.Intermediate, cfg.NumExperts
	q, kv := cfg.NumHeads*cfg.HeadDim, cfg.NumKVHeads*cfg.HeadDim
	var (
		lw  LayerWeights
		err error
	)
	try := func(dst *Tensor, name string, dt DType, shape ...int) {
		if err == nil {
			*dst, err = m.get(name, dt, shape...)
		}
	}
	try(&lw.AttnNorm, n.AttnNorm, BF16, H)
	if n.QKV != "" {
		var qkv, qkvBias Tensor
		try(&qkv, n.QKV, BF16, q+2*kv, H)
		try(&qkvBias, n.QKVBias, BF16, q+2*kv)
		if err != nil {
			return lw, err
		}
		// Rows are contiguous, so Q, K and V are plain sub-slices of the
		// fused tensor: no copy.
		lw.Q, lw.K, lw.V = splitRows(qkv, []int{q, kv, kv}, "q", "k", "v")
		lw.QBias, lw.KBias, lw.VBias = splitRows(qkvBias, []int{q, kv, kv}, "q", "k", "v")
	} else {
		try(&lw.Q, n.Q, BF16, q, H)
		try(&lw.QBias, n.QBias, BF16, q)
		try(&lw.K, n.K, BF16, kv, H)
		try(&lw.KBias, n.KBias, BF16, kv)
		try(&lw.V, n.V, BF16, kv, H)
		try(&lw.VBias, n.VBias, BF16, kv)
	}
	try(&lw.O, n.O, BF16, H, q)
	try(&lw.OBias, n.OBias, BF16, H)
	try(&lw.Sinks, n.Sinks, BF16, cfg.NumHeads)
	try(&lw.MLPNorm, n.MLPNorm, BF16, H)
	try(&lw.Router, n.Router, BF16, E, H)
	try(&lw.RouterBias, n.RouterBias, BF16, E)
	if err != nil {
		return lw, err
	}
	// gate_up: 2I rows (gate/up interleaved) over the hidden input; down:
	// H rows over the intermediate input.
	if lw.GateUp, err = m.experts(n.GateUpBlocks, n.GateUpScales, n.GateUpBias, E, 2*I, H); err != nil {
		return lw, err
	}
	lw.Down, err = m.experts(n.DownBlocks, n.DownScales, n.DownBias, E, H, I)
	return lw, err
}

// splitRows cuts t (shape [sum(rows)] or [sum(rows), cols]) into three
// tensors of rows[i] leading rows each, aliasing t.Data. Names get a
// "[q]"-style suffix so errors and listings show where a part came from.
func splitRows(t Tensor, rows []int, a, b, c string) (Tensor, Tensor, Tensor) {
	rowBytes := len(t.Data) / t.Shape[0]
	var out [3]Tensor
	off := 0
	for i, part := range []string{a, b, c} {
		n := rows[i] * rowBytes
		shape := slices.Clone(t.Shape)
		shape[0] = rows[i]
		out[i] = Tensor{Name: t.Name + "[" + part + "]", DType: t.DType, Shape: shape, Data: t.Data[off : off+n : off+n]}
		off += n
	}
	return out[0], out[1], out[2]
}
