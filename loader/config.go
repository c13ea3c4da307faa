package loader

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// Defaults from spec §1, used when a key is absent. Every reference
// hard-codes them, and the released configs carry the same values.
const (
	defaultRopeTheta      = 150000
	defaultRMSNormEps     = 1e-5
	defaultSwigluLimit    = 7.0
	defaultSwigluAlpha    = 1.702
	defaultYarnFactor     = 32
	defaultYarnBetaFast   = 32
	defaultYarnBetaSlow   = 1
	defaultInitialContext = 4096
	defaultSlidingWindow  = 128
)

// defaultEOS returns the stop ids of the released models (<|return|>,
// <|endoftext|>, <|call|>), used for an original/ checkpoint that has no
// Hugging Face config beside it. A function, not a var, so no caller can
// change the defaults.
func defaultEOS() []int { return []int{200002, 199999, 200012} }

const defaultPad = 199999

// maxDim bounds every configured dimension: far above any gpt-oss size
// (vocab 201088 is the largest), low enough that products of a few dims
// cannot overflow int64.
const maxDim = 1 << 24

// mxfp4Block is the MXFP4 block length along the reduction dimension.
const mxfp4Block = 32

// jsonObject is a parsed config file that remembers its name for errors.
type jsonObject struct {
	file string
	m    map[string]json.RawMessage
}

func readJSONObject(path string) (jsonObject, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return jsonObject{}, fmt.Errorf("loader: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return jsonObject{}, fmt.Errorf("loader: %s: %w", path, err)
	}
	if m == nil { // the file said null
		return jsonObject{}, fmt.Errorf("loader: %s: not a JSON object", path)
	}
	return jsonObject{file: path, m: m}, nil
}

func (o jsonObject) has(key string) bool {
	v, ok := o.m[key]
	return ok && string(v) != "null"
}

func (o jsonObject) errorf(key, format string, args ...any) error {
	return fmt.Errorf("loader: %s: %s: %s", o.file, key, fmt.Sprintf(format, args...))
}

// float reads key as a number; ok is false when absent or null.
func (o jsonObject) float(key string) (v float64, ok bool, err error) {
	if !o.has(key) {
		return 0, false, nil
	}
	if err := json.Unmarshal(o.m[key], &v); err != nil {
		return 0, false, o.errorf(key, "want a number, got %s", o.m[key])
	}
	return v, true, nil
}

// int reads key as an integer. Integral floats ("4096.0") are accepted
// because some converters write every number as a float.
func (o jsonObject) int(key string) (v int, ok bool, err error) {
	f, ok, err := o.float(key)
	if !ok || err != nil {
		return 0, ok, err
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false, o.errorf(key, "want an integer, got %s", o.m[key])
	}
	return int(f), true, nil
}

// ints reads key as an integer or a list of integers (eos_token_id is
// either).
func (o jsonObject) ints(key string) ([]int, error) {
	if !o.has(key) {
		return nil, nil
	}
	if v, ok, err := o.int(key); err == nil && ok {
		return []int{v}, nil
	}
	var vs []int
	if err := json.Unmarshal(o.m[key], &vs); err != nil {
		return nil, o.errorf(key, "want an integer or a list of integers, got %s", o.m[key])
	}
	return vs, nil
}

// firstInt returns the first present key among keys; two present keys that
// disagree are an error, since which one the model was trained with is then
// unknowable.
func (o jsonObject) firstInt(keys ...string) (v int, ok bool, err error) {
	from := ""
	for _, k := range keys {
		x, present, err := o.int(k)
		if err != nil {
			return 0, false, err
		}
		if !present {
			continue
		}
		if ok && x != v {
			return 0, false, fmt.Errorf("loader: %s: %s = %d but %s = %d", o.file, from, v, k, x)
		}
		if !ok {
			v, ok, from = x, true, k
		}
	}
	return v, ok, nil
}

// requireInt reads the first present of keys, failing when none is there.
func (o jsonObject) requireInt(keys ...string) (int, error) {
	v, ok, err := o.firstInt(keys...)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("loader: %s: missing %s", o.file, keys[0])
	}
	return v, nil
}

func (o jsonObject) floatOr(key string, def float64) (float64, error) {
	v, ok, err := o.float(key)
	if err != nil || !ok {
		return def, err
	}
	return v, nil
}

// sub returns the nested object at key, ok false when absent or null.
func (o jsonObject) sub(key string) (jsonObject, bool, error) {
	if !o.has(key) {
		return jsonObject{}, false, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(o.m[key], &m); err != nil {
		return jsonObject{}, false, o.errorf(key, "want an object, got %s", o.m[key])
	}
	return jsonObject{file: o.file + ": " + key, m: m}, true, nil
}

// isOriginalConfig tells OpenAI's original/config.json from a Hugging Face
// one: the former names experts num_experts and has no model_type.
func isOriginalConfig(o jsonObject) bool {
	return o.has("num_experts") && !o.has("model_type")
}

// parseHFConfig reads a Hugging Face config.json and, when present, the
// generation_config.json beside it.
func parseHFConfig(dir string) (Config, error) {
	o, err := readJSONObject(filepath.Join(dir, "config.json"))
	if err != nil {
		return Config{}, err
	}
	if isOriginalConfig(o) {
		return Config{}, fmt.Errorf("loader: %s: this is OpenAI's original/ config (num_experts, no model_type), not a Hugging Face one", o.file)
	}
	var c Config
	for _, f := range []struct {
		dst  *int
		keys []string
	}{
		{&c.NumLayers, []string{"num_hidden_layers"}},
		{&c.NumExperts, []string{"num_local_experts", "num_experts"}},
		{&c.ExpertsPerToken, []string{"num_experts_per_tok", "experts_per_token"}},
		{&c.VocabSize, []string{"vocab_size"}},
		{&c.HiddenSize, []string{"hidden_size"}},
		{&c.Intermediate, []string{"intermediate_size"}},
		{&c.NumHeads, []string{"num_attention_heads"}},
	} {
		if *f.dst, err = o.requireInt(f.keys...); err != nil {
			return Config{}, err
		}
	}
	// HF's convention for both: absent means "same as the query heads" and
	// "hidden / heads".
	var ok bool
	if c.NumKVHeads, ok, err = o.int("num_key_value_heads"); err != nil {
		return Config{}, err
	} else if !ok {
		c.NumKVHeads = c.NumHeads
	}
	if c.HeadDim, ok, err = o.int("head_dim"); err != nil {
		return Config{}, err
	} else if !ok && c.NumHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	if c.SlidingWindow, ok, err = o.int("sliding_window"); err != nil {
		return Config{}, err
	} else if !ok {
		c.SlidingWindow = defaultSlidingWindow
	}
	if c.Sliding, err = parseLayerTypes(o, c.NumLayers); err != nil {
		return Config{}, err
	}

	rope, hasRope, err := o.sub("rope_scaling")
	if err != nil {
		return Config{}, err
	}
	if !hasRope {
		// Newest transformers renamed rope_scaling to rope_parameters and
		// moved rope_theta into it.
		if rope, hasRope, err = o.sub("rope_parameters"); err != nil {
			return Config{}, err
		}
	}
	if c.RopeTheta, ok, err = o.float("rope_theta"); err != nil {
		return Config{}, err
	} else if !ok {
		c.RopeTheta = defaultRopeTheta
		if hasRope {
			if c.RopeTheta, err = rope.floatOr("rope_theta", defaultRopeTheta); err != nil {
				return Config{}, err
			}
		}
	}
	c.YarnFactor, c.YarnBetaFast, c.YarnBetaSlow = defaultYarnFactor, defaultYarnBetaFast, defaultYarnBetaSlow
	// initial_context_length is the OpenAI-style duplicate of the rope
	// object's original_max_position_embeddings; when both exist they must
	// agree.
	initCtx, hasInitCtx, err := o.int("initial_context_length")
	if err != nil {
		return Config{}, err
	}
	if hasRope {
		if err := checkYarn(rope); err != nil {
			return Config{}, err
		}
		if c.YarnFactor, err = rope.floatOr("factor", defaultYarnFactor); err != nil {
			return Config{}, err
		}
		if c.YarnBetaFast, err = rope.floatOr("beta_fast", defaultYarnBetaFast); err != nil {
			return Config{}, err
		}
		if c.YarnBetaSlow, err = rope.floatOr("beta_slow", defaultYarnBetaSlow); err != nil {
			return Config{}, err
		}
		v, ok, err := rope.int("original_max_position_embeddings")
		if err != nil {
			return Config{}, err
		}
		if ok {
			if hasInitCtx && initCtx != v {
				return Config{}, fmt.Errorf("loader: %s: initial_context_length = %d but original_max_position_embeddings = %d", o.file, initCtx, v)
			}
			initCtx, hasInitCtx = v, true
		}
	}
	c.InitialContext = defaultInitialContext
	if hasInitCtx {
		c.InitialContext = initCtx
	}
	if c.MaxPositions, ok, err = o.int("max_position_embeddings"); err != nil {
		return Config{}, err
	} else if !ok {
		c.MaxPositions = int(float64(c.InitialContext) * c.YarnFactor)
	}
	if c.RMSNormEps, err = o.floatOr("rms_norm_eps", defaultRMSNormEps); err != nil {
		return Config{}, err
	}
	if c.SwigluLimit, err = o.floatOr("swiglu_limit", defaultSwigluLimit); err != nil {
		return Config{}, err
	}
	if c.SwigluAlpha, err = o.floatOr("swiglu_alpha", defaultSwigluAlpha); err != nil {
		return Config{}, err
	}

	eos, err := o.ints("eos_token_id")
	if err != nil {
		return Config{}, err
	}
	pad, hasPad, err := o.int("pad_token_id")
	if err != nil {
		return Config{}, err
	}
	genEOS, genPad, genHasPad, err := readGenerationConfig(dir)
	if err != nil {
		return Config{}, err
	}
	if !hasPad {
		pad, hasPad = genPad, genHasPad
	}
	c.EOSTokenIDs = mergeIDs(c.VocabSize, eos, genEOS)
	c.PadTokenID = -1
	if hasPad && pad >= 0 && pad < c.VocabSize {
		c.PadTokenID = pad
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("loader: %s: %w", o.file, err)
	}
	return c, nil
}

// checkYarn rejects rope settings whose math differs from what the engine
// implements, rather than silently computing something else.
func checkYarn(rope jsonObject) error {
	if rope.has("rope_type") || rope.has("type") {
		key := "rope_type"
		if !rope.has(key) {
			key = "type"
		}
		var t string
		if err := json.Unmarshal(rope.m[key], &t); err != nil || t != "yarn" {
			return rope.errorf(key, "%s not supported: gpt-oss uses yarn", rope.m[key])
		}
	}
	if rope.has("truncate") {
		var tr bool
		if err := json.Unmarshal(rope.m["truncate"], &tr); err != nil {
			return rope.errorf("truncate", "want a boolean, got %s", rope.m["truncate"])
		}
		if tr {
			return rope.errorf("truncate", "true not supported: gpt-oss keeps fractional YaRN bounds (truncate: false)")
		}
	}
	return nil
}

func parseLayerTypes(o jsonObject, numLayers int) ([]bool, error) {
	if numLayers <= 0 || numLayers > maxDim {
		return nil, fmt.Errorf("loader: %s: num_hidden_layers = %d, want 1..%d", o.file, numLayers, maxDim)
	}
	sliding := make([]bool, numLayers)
	if !o.has("layer_types") {
		for l := range sliding {
			sliding[l] = l%2 == 0 // OpenAI's rule: even layers slide
		}
		return sliding, nil
	}
	var types []string
	if err := json.Unmarshal(o.m["layer_types"], &types); err != nil {
		return nil, o.errorf("layer_types", "want a list of strings: %v", err)
	}
	if len(types) != numLayers {
		return nil, o.errorf("layer_types", "%d entries for %d layers", len(types), numLayers)
	}
	for l, t := range types {
		switch t {
		case "sliding_attention":
			sliding[l] = true
		case "full_attention":
		default:
			return nil, o.errorf("layer_types", "layer %d has unknown type %q (want sliding_attention or full_attention)", l, t)
		}
	}
	return sliding, nil
}

// readGenerationConfig returns generation_config.json's eos and pad ids, or
// nothing when the file is absent.
func readGenerationConfig(dir string) (eos []int, pad int, hasPad bool, err error) {
	path := filepath.Join(dir, "generation_config.json")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, 0, false, nil
	}
	g, err := readJSONObject(path)
	if err != nil {
		return nil, 0, false, err
	}
	if eos, err = g.ints("eos_token_id"); err != nil {
		return nil, 0, false, err
	}
	pad, hasPad, err = g.int("pad_token_id")
	return eos, pad, hasPad, err
}

// mergeIDs concatenates id lists, dropping duplicates and ids outside the
// vocabulary: the model can never emit those, so they cannot stop anything.
func mergeIDs(vocab int, lists ...[]int) []int {
	var out []int
	for _, l := range lists {
		for _, id := range l {
			if id >= 0 && id < vocab && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// parseOriginalConfig reads OpenAI's original/config.json in dir. Stop and
// pad ids are not in it; they come from a Hugging Face config in parent
// (the repository root) when there is one, else the released defaults.
func parseOriginalConfig(dir, parent string) (Config, error) {
	o, err := readJSONObject(filepath.Join(dir, "config.json"))
	if err != nil {
		return Config{}, err
	}
	var c Config
	for _, f := range []struct {
		dst  *int
		keys []string
	}{
		{&c.NumLayers, []string{"num_hidden_layers"}},
		{&c.NumExperts, []string{"num_experts"}},
		{&c.ExpertsPerToken, []string{"experts_per_token"}},
		{&c.VocabSize, []string{"vocab_size"}},
		{&c.HiddenSize, []string{"hidden_size"}},
		{&c.Intermediate, []string{"intermediate_size"}},
		{&c.NumHeads, []string{"num_attention_heads"}},
		{&c.NumKVHeads, []string{"num_key_value_heads"}},
		{&c.HeadDim, []string{"head_dim"}},
	} {
		if *f.dst, err = o.requireInt(f.keys...); err != nil {
			return Config{}, err
		}
	}
	var ok bool
	if c.SlidingWindow, ok, err = o.int("sliding_window"); err != nil {
		return Config{}, err
	} else if !ok {
		c.SlidingWindow = defaultSlidingWindow
	}
	if c.Sliding, err = parseLayerTypes(o, c.NumLayers); err != nil {
		return Config{}, err
	}
	if c.InitialContext, ok, err = o.int("initial_context_length"); err != nil {
		return Config{}, err
	} else if !ok {
		c.InitialContext = defaultInitialContext
	}
	for _, f := range []struct {
		dst *float64
		key string
		def float64
	}{
		{&c.RopeTheta, "rope_theta", defaultRopeTheta},
		{&c.YarnFactor, "rope_scaling_factor", defaultYarnFactor},
		// OpenAI's names are swapped relative to HF's: ntk_beta is the
		// fast (32) one, ntk_alpha the slow (1) one.
		{&c.YarnBetaFast, "rope_ntk_beta", defaultYarnBetaFast},
		{&c.YarnBetaSlow, "rope_ntk_alpha", defaultYarnBetaSlow},
		{&c.SwigluLimit, "swiglu_limit", defaultSwigluLimit},
		{&c.SwigluAlpha, "swiglu_alpha", defaultSwigluAlpha},
	} {
		if *f.dst, err = o.floatOr(f.key, f.def); err != nil {
			return Config{}, err
		}
	}
	// No eps key exists in this layout; every OpenAI implementation
	// hard-codes 1e-5.
	c.RMSNormEps = defaultRMSNormEps
	c.MaxPositions = int(float64(c.InitialContext) * c.YarnFactor)

	eos, pad, hasPad, err := parentStopIDs(parent)
	if err != nil {
		return Config{}, err
	}
	if len(eos) == 0 {
		eos = defaultEOS()
	}
	if !hasPad {
		pad = defaultPad
	}
	c.EOSTokenIDs = mergeIDs(c.VocabSize, eos)
	c.PadTokenID = -1
	if pad >= 0 && pad < c.VocabSize {
		c.PadTokenID = pad
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("loader: %s: %w", o.file, err)
	}
	return c, nil
}

// parentStopIDs reads eos/pad ids from a Hugging Face config.json and
// generation_config.json in dir, if any.
func parentStopIDs(dir string) (eos []int, pad int, hasPad bool, err error) {
	if dir == "" {
		return nil, 0, false, nil
	}
	path := filepath.Join(dir, "config.json")
	if _, err := os.Stat(path); err == nil {
		o, err := readJSONObject(path)
		if err != nil {
			return nil, 0, false, err
		}
		if !isOriginalConfig(o) {
			if eos, err = o.ints("eos_token_id"); err != nil {
				return nil, 0, false, err
			}
			if pad, hasPad, err = o.int("pad_token_id"); err != nil {
				return nil, 0, false, err
			}
		}
	}
	genEOS, genPad, genHasPad, err := readGenerationConfig(dir)
	if err != nil {
		return nil, 0, false, err
	}
	if !hasPad {
		pad, hasPad = genPad, genHasPad
	}
	return append(eos, genEOS...), pad, hasPad, nil
}

// validate checks the invariants the rest of the engine relies on.
func (c *Config) validate() error {
	for _, d := range []struct {
		name string
		v    int
	}{
		{"num_hidden_layers", c.NumLayers},
		{"num_experts", c.NumExperts},
		{"experts_per_token", c.ExpertsPerToken},
		{"vocab_size", c.VocabSize},
		{"hidden_size", c.HiddenSize},
		{"intermediate_size", c.Intermediate},
		{"num_attention_heads", c.NumHeads},
		{"num_key_value_heads", c.NumKVHeads},
		{"head_dim", c.HeadDim},
		{"initial_context_length", c.InitialContext},
		{"max_position_embeddings", c.MaxPositions},
	} {
		if d.v <= 0 || d.v > maxDim {
			return fmt.Errorf("%s = %d, want 1..%d", d.name, d.v, maxDim)
		}
	}
	if c.ExpertsPerToken > c.NumExperts {
		return fmt.Errorf("experts_per_token = %d exceeds num_experts = %d", c.ExpertsPerToken, c.NumExperts)
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		return fmt.Errorf("num_attention_heads = %d is not a multiple of num_key_value_heads = %d", c.NumHeads, c.NumKVHeads)
	}
	// MXFP4 blocks run along the reduction dimension of both expert
	// projections: hidden for gate_up, intermediate for down.
	if c.HiddenSize%mxfp4Block != 0 {
		return fmt.Errorf("hidden_size = %d is not a multiple of the MXFP4 block size %d", c.HiddenSize, mxfp4Block)
	}
	if c.Intermediate%mxfp4Block != 0 {
		return fmt.Errorf("intermediate_size = %d is not a multiple of the MXFP4 block size %d", c.Intermediate, mxfp4Block)
	}
	if len(c.Sliding) != c.NumLayers {
		return fmt.Errorf("%d layer types for %d layers", len(c.Sliding), c.NumLayers)
	}
	if slices.Contains(c.Sliding, true) && (c.SlidingWindow <= 0 || c.SlidingWindow > maxDim) {
		return fmt.Errorf("sliding_window = %d, want 1..%d", c.SlidingWindow, maxDim)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"rope_theta", c.RopeTheta},
		{"rope factor", c.YarnFactor},
		{"beta_fast", c.YarnBetaFast},
		{"beta_slow", c.YarnBetaSlow},
		{"rms_norm_eps", c.RMSNormEps},
		{"swiglu_limit", c.SwigluLimit},
		{"swiglu_alpha", c.SwigluAlpha},
	} {
		if !(f.v > 0) || math.IsInf(f.v, 0) {
			return fmt.Errorf("%s = %v, want a positive finite number", f.name, f.v)
		}
	}
	if c.YarnFactor < 1 {
		return fmt.Errorf("rope factor = %v, want ≥ 1", c.YarnFactor)
	}
	if c.YarnBetaSlow >= c.YarnBetaFast {
		return fmt.Errorf("beta_slow = %v must be below beta_fast = %v", c.YarnBetaSlow, c.YarnBetaFast)
	}
	return nil
}

// BytesPerDecodedToken is the weight bytes read to decode one token at
// batch 1 (KV cache excluded): every dense tensor of every layer, the
// routed experts only, the final norm, the LM head and a single embedding
// row. It is the denominator of a memory-bandwidth roofline (3.708 GB for
// gpt-oss-20b, 5.003 GB for 120b). The config is assumed validated.
func (c Config) BytesPerDecodedToken() int64 {
	const bf16 = 2
	H, I := int64(c.HiddenSize), int64(c.Intermediate)
	q := int64(c.NumHeads) * int64(c.HeadDim)
	kv := int64(c.NumKVHeads) * int64(c.HeadDim)
	E := int64(c.NumExperts)

	attn := bf16 * (H + // input norm
		q*H + q + 2*(kv*H+kv) + // q, k, v with biases
		H*q + H + // o with bias
		int64(c.NumHeads)) // sinks
	router := bf16 * (H + E*H + E) // mlp norm, router weight and bias
	// One MXFP4 row is (in/32) blocks of 16 code bytes plus 1 scale byte.
	gateUp := 2*I*(H/mxfp4Block)*(16+1) + bf16*2*I
	down := H*(I/mxfp4Block)*(16+1) + bf16*H
	layer := attn + router + int64(c.ExpertsPerToken)*(gateUp+down)

	return int64(c.NumLayers)*layer + bf16*(H+int64(c.VocabSize)*H+H)
}
