// Package synth writes synthetic gpt-oss checkpoints: random weights in the
// exact Hugging Face layout (config.json, generation_config.json, sharded
// safetensors with the real repo's "-of-{N-1}" naming and an index) and,
// optionally, OpenAI's original/ layout holding the same weights. Any
// geometry can be written, including the real 20b and 120b ones, so that
// loaders, engines and benchmarks can be exercised without downloading the
// released checkpoints. Output is deterministic in the seed and streamed to
// disk: memory stays small whatever the checkpoint size.
package synth

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"sort"
)

// Config is the geometry of a synthetic checkpoint. Everything else in
// config.json (RoPE/YaRN constants, eps, swiglu limit) is fixed at the
// released models' values.
type Config struct {
	Layers          int // num_hidden_layers
	Hidden          int // hidden_size
	Experts         int // num_local_experts
	ExpertsPerToken int // num_experts_per_tok
	Intermediate    int // intermediate_size (per expert)
	Heads           int // num_attention_heads
	KVHeads         int // num_key_value_heads
	HeadDim         int // head_dim
	Vocab           int // vocab_size
	Window          int // sliding_window
}

// presets returns the named geometries. A function, not a package-level
// map, so nothing can mutate them.
func presets() map[string]Config {
	return map[string]Config{
		// Small enough to run anywhere, but with the full o200k_harmony
		// vocabulary so it can serve real text; q width (8·16 = 128) differs
		// from hidden (64) as in the real models.
		"tiny": {Layers: 4, Hidden: 64, Experts: 8, ExpertsPerToken: 4, Intermediate: 64,
			Heads: 8, KVHeads: 2, HeadDim: 16, Vocab: 201088, Window: 128},
		// The golden "shapes" fixture's geometry.
		"shapes": {Layers: 6, Hidden: 96, Experts: 16, ExpertsPerToken: 4, Intermediate: 64,
			Heads: 8, KVHeads: 2, HeadDim: 16, Vocab: 1000, Window: 8},
		"20b": {Layers: 24, Hidden: 2880, Experts: 32, ExpertsPerToken: 4, Intermediate: 2880,
			Heads: 64, KVHeads: 8, HeadDim: 64, Vocab: 201088, Window: 128},
		"120b": {Layers: 36, Hidden: 2880, Experts: 128, ExpertsPerToken: 4, Intermediate: 2880,
			Heads: 64, KVHeads: 8, HeadDim: 64, Vocab: 201088, Window: 128},
	}
}

// PresetNames lists the preset names, sorted.
func PresetNames() []string {
	var names []string
	for n := range presets() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Preset returns the named geometry: "tiny", "shapes", "20b" or "120b".
func Preset(name string) (Config, error) {
	c, ok := presets()[name]
	if !ok {
		return Config{}, fmt.Errorf("synth: unknown preset %q (have %v)", name, PresetNames())
	}
	return c, nil
}

// DefaultShardSize is the shard size that reproduces the released repo's
// shard count for a preset (20b: 3 files, 120b: 15 files); other presets
// fit one file. OriginalShardSize is the same for original/ (20b: one file,
// 120b: 7 files).
func DefaultShardSize(preset string) (hf, original int64) {
	// 5 GB is Hugging Face's default max_shard_size.
	if preset == "120b" {
		return 5_000_000_000, 10_000_000_000
	}
	return 5_000_000_000, 0
}

// maxDim bounds every dimension so that size arithmetic cannot overflow
// int64 (checked again on the totals).
const maxDim = 1 << 24

// Validate reports whether c describes a checkpoint gpt-oss code can read.
func (c Config) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"layers", c.Layers}, {"hidden", c.Hidden}, {"experts", c.Experts},
		{"experts-per-token", c.ExpertsPerToken}, {"intermediate", c.Intermediate},
		{"heads", c.Heads}, {"kv-heads", c.KVHeads}, {"head-dim", c.HeadDim},
		{"vocab", c.Vocab}, {"window", c.Window},
	} {
		if f.v <= 0 || f.v > maxDim {
			return fmt.Errorf("synth: %s = %d, want 1..%d", f.name, f.v, maxDim)
		}
	}
	switch {
	case c.Hidden%32 != 0:
		return fmt.Errorf("synth: hidden = %d is not a multiple of 32 (the MXFP4 block runs along it)", c.Hidden)
	case c.Intermediate%32 != 0:
		return fmt.Errorf("synth: intermediate = %d is not a multiple of 32 (the MXFP4 block runs along it)", c.Intermediate)
	case c.HeadDim%2 != 0:
		return fmt.Errorf("synth: head-dim = %d is odd (RoPE rotates halves)", c.HeadDim)
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("synth: heads = %d is not a multiple of kv-heads = %d", c.Heads, c.KVHeads)
	case c.ExpertsPerToken > c.Experts:
		return fmt.Errorf("synth: experts-per-token = %d exceeds experts = %d", c.ExpertsPerToken, c.Experts)
	case c.Vocab < 4:
		return fmt.Errorf("synth: vocab = %d, want at least 4 (room for bos/eos/pad)", c.Vocab)
	}
	// Largest tensor-size product: E·2I·H elements, V·H, and the total.
	if _, ok := mulChecked(int64(c.Experts), 2*int64(c.Intermediate), int64(c.Hidden), int64(c.Layers)); !ok {
		return fmt.Errorf("synth: geometry too large")
	}
	if _, ok := mulChecked(int64(c.Vocab), int64(c.Hidden), 4); !ok {
		return fmt.Errorf("synth: geometry too large")
	}
	return nil
}

// mulChecked multiplies non-negative factors, reporting overflow past 2^62.
func mulChecked(fs ...int64) (int64, bool) {
	p := uint64(1)
	for _, f := range fs {
		hi, lo := bits.Mul64(p, uint64(f))
		if hi != 0 || lo > 1<<62 {
			return 0, false
		}
		p = lo
	}
	return int64(p), true
}

// Real o200k_harmony special ids (spec §1).
const (
	realBOS    = 199998 // <|startoftext|>
	realPad    = 199999 // <|endoftext|>
	realEOS    = 200002 // <|return|>
	realCall   = 200012 // <|call|>
	maxSpecial = realCall
)

// SpecialTokens returns the ids written to config.json and
// generation_config.json. With the full vocabulary they are the real ones;
// a smaller vocabulary cannot hold them, so (as the golden fixtures do) eos,
// pad and bos become the last three ids and generation stops on eos and pad.
func (c Config) SpecialTokens() (bos, eos, pad int, genEOS []int) {
	if c.Vocab > maxSpecial {
		return realBOS, realEOS, realPad, []int{realEOS, realPad, realCall}
	}
	v := c.Vocab
	return v - 3, v - 1, v - 2, []int{v - 1, v - 2}
}

// LayerTypes is HF's layer_types: even layers slide, odd are full.
func (c Config) LayerTypes() []string {
	t := make([]string, c.Layers)
	for l := range t {
		if l%2 == 0 {
			t[l] = "sliding_attention"
		} else {
			t[l] = "full_attention"
		}
	}
	return t
}

// num writes a float the way Python's json does (7.0, not 7), so the files
// read like the released ones.
func num(s string) json.Number { return json.Number(s) }

// marshalFile renders a JSON file as the released repos do: indented,
// newline-terminated.
func marshalFile(v any, indent string) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", indent)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// HFConfigJSON renders config.json with every key the released one has,
// sorted as in the released file.
func (c Config) HFConfigJSON() ([]byte, error) {
	_, eos, pad, _ := c.SpecialTokens()
	m := map[string]any{
		"architectures":           []string{"GptOssForCausalLM"},
		"attention_bias":          true,
		"attention_dropout":       num("0.0"),
		"eos_token_id":            eos,
		"experts_per_token":       c.ExpertsPerToken,
		"head_dim":                c.HeadDim,
		"hidden_act":              "silu",
		"hidden_size":             c.Hidden,
		"initial_context_length":  4096,
		"initializer_range":       num("0.02"),
		"intermediate_size":       c.Intermediate,
		"layer_types":             c.LayerTypes(),
		"max_position_embeddings": 131072,
		"model_type":              "gpt_oss",
		"num_attention_heads":     c.Heads,
		"num_experts_per_tok":     c.ExpertsPerToken,
		"num_hidden_layers":       c.Layers,
		"num_key_value_heads":     c.KVHeads,
		"num_local_experts":       c.Experts,
		"output_router_logits":    false,
		"pad_token_id":            pad,
		"quantization_config": map[string]any{
			"modules_to_not_convert": []string{
				"model.layers.*.self_attn",
				"model.layers.*.mlp.router",
				"model.embed_tokens",
				"lm_head",
			},
			"quant_method": "mxfp4",
		},
		"rms_norm_eps": num("1e-05"),
		"rope_scaling": map[string]any{
			"beta_fast":                        num("32.0"),
			"beta_slow":                        num("1.0"),
			"factor":                           num("32.0"),
			"original_max_position_embeddings": 4096,
			"rope_type":                        "yarn",
			"truncate":                         false,
		},
		"rope_theta":           150000,
		"router_aux_loss_coef": num("0.9"),
		"sliding_window":       c.Window,
		"swiglu_limit":         num("7.0"),
		"tie_word_embeddings":  false,
		"transformers_version": "4.55.0.dev0",
		"use_cache":            true,
		"vocab_size":           c.Vocab,
	}
	return marshalFile(m, "  ")
}

// GenerationConfigJSON renders generation_config.json.
func (c Config) GenerationConfigJSON() ([]byte, error) {
	bos, _, pad, gen := c.SpecialTokens()
	m := map[string]any{
		"bos_token_id":         bos,
		"do_sample":            true,
		"eos_token_id":         gen,
		"pad_token_id":         pad,
		"transformers_version": "4.55.0.dev0",
	}
	return marshalFile(m, "  ")
}

// originalConfig is original/config.json; field order is the released
// file's order.
type originalConfig struct {
	NumHiddenLayers      int         `json:"num_hidden_layers"`
	NumExperts           int         `json:"num_experts"`
	ExpertsPerToken      int         `json:"experts_per_token"`
	VocabSize            int         `json:"vocab_size"`
	HiddenSize           int         `json:"hidden_size"`
	IntermediateSize     int         `json:"intermediate_size"`
	SwigluLimit          json.Number `json:"swiglu_limit"`
	HeadDim              int         `json:"head_dim"`
	NumAttentionHeads    int         `json:"num_attention_heads"`
	NumKeyValueHeads     int         `json:"num_key_value_heads"`
	SlidingWindow        int         `json:"sliding_window"`
	InitialContextLength int         `json:"initial_context_length"`
	RopeTheta            int         `json:"rope_theta"`
	RopeScalingFactor    json.Number `json:"rope_scaling_factor"`
	RopeNTKAlpha         int         `json:"rope_ntk_alpha"`
	RopeNTKBeta          int         `json:"rope_ntk_beta"`
}

// OriginalConfigJSON renders original/config.json (OpenAI key names).
func (c Config) OriginalConfigJSON() ([]byte, error) {
	return marshalFile(originalConfig{
		NumHiddenLayers: c.Layers, NumExperts: c.Experts, ExpertsPerToken: c.ExpertsPerToken,
		VocabSize: c.Vocab, HiddenSize: c.Hidden, IntermediateSize: c.Intermediate,
		SwigluLimit: num("7.0"), HeadDim: c.HeadDim, NumAttentionHeads: c.Heads,
		NumKeyValueHeads: c.KVHeads, SlidingWindow: c.Window, InitialContextLength: 4096,
		RopeTheta: 150000, RopeScalingFactor: num("32.0"), RopeNTKAlpha: 1, RopeNTKBeta: 32,
	}, "  ")
}
