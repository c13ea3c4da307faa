package loader

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// gpt20b is the 20b configuration of spec §1.
func gpt20b() Config {
	c := Config{
		NumLayers: 24, NumExperts: 32, ExpertsPerToken: 4, VocabSize: 201088,
		HiddenSize: 2880, Intermediate: 2880, NumHeads: 64, NumKVHeads: 8, HeadDim: 64,
		SlidingWindow: 128, RopeTheta: 150000, YarnFactor: 32, YarnBetaFast: 32, YarnBetaSlow: 1,
		InitialContext: 4096, MaxPositions: 131072, RMSNormEps: 1e-5, SwigluLimit: 7, SwigluAlpha: 1.702,
		EOSTokenIDs: []int{200002, 199999, 200012}, PadTokenID: 199999,
	}
	c.Sliding = make([]bool, c.NumLayers)
	for l := range c.Sliding {
		c.Sliding[l] = l%2 == 0
	}
	return c
}

func TestBytesPerDecodedToken(t *testing.T) {
	c20 := gpt20b()
	if err := c20.validate(); err != nil {
		t.Fatal(err)
	}
	c120 := gpt20b()
	c120.NumLayers, c120.NumExperts = 36, 128
	c120.Sliding = make([]bool, 36)
	for _, tc := range []struct {
		name  string
		c     Config
		exact int64
		spec  float64 // the rounded figure of spec §1
	}{
		{"20b", c20, 3_708_089_088, 3.708e9},
		{"120b", c120, 5_002_907_904, 5.003e9},
	} {
		got := tc.c.BytesPerDecodedToken()
		if got != tc.exact {
			t.Errorf("%s: %d bytes, want %d", tc.name, got, tc.exact)
		}
		if math.Abs(float64(got)-tc.spec) > 0.0005e9 {
			t.Errorf("%s: %d bytes, spec says ≈ %.3g", tc.name, got, tc.spec)
		}
	}
}

func TestConfigFixtures(t *testing.T) {
	tiny := Config{
		NumLayers: 4, NumExperts: 8, ExpertsPerToken: 2, VocabSize: 512,
		HiddenSize: 64, Intermediate: 64, NumHeads: 4, NumKVHeads: 2, HeadDim: 16,
		SlidingWindow: 8, Sliding: []bool{true, false, true, false},
		RopeTheta: 150000, YarnFactor: 32, YarnBetaFast: 32, YarnBetaSlow: 1,
		InitialContext: 4096, MaxPositions: 131072, RMSNormEps: 1e-5, SwigluLimit: 7, SwigluAlpha: 1.702,
		EOSTokenIDs: []int{511, 510}, PadTokenID: 510,
	}
	got, err := parseHFConfig(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, tiny) {
		t.Errorf("tiny config\n got %+v\nwant %+v", got, tiny)
	}

	shapes := Config{
		NumLayers: 6, NumExperts: 16, ExpertsPerToken: 4, VocabSize: 1000,
		HiddenSize: 96, Intermediate: 64, NumHeads: 8, NumKVHeads: 2, HeadDim: 16,
		SlidingWindow: 8, Sliding: []bool{true, false, true, false, true, false},
		RopeTheta: 150000, YarnFactor: 32, YarnBetaFast: 32, YarnBetaSlow: 1,
		InitialContext: 4096, MaxPositions: 131072, RMSNormEps: 1e-5, SwigluLimit: 7, SwigluAlpha: 1.702,
		EOSTokenIDs: []int{999, 998}, PadTokenID: 998,
	}
	if got, err = parseHFConfig(shapesDir); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, shapes) {
		t.Errorf("shapes config\n got %+v\nwant %+v", got, shapes)
	}
	// original/config.json has no stop ids; they come from the HF files in
	// the repository root above it.
	if got, err = parseOriginalConfig(shapesOrigin, shapesDir); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, shapes) {
		t.Errorf("shapes original config\n got %+v\nwant %+v", got, shapes)
	}
}

// writeConfig writes m as config.json in a fresh directory.
func writeConfig(t *testing.T, m map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "config.json"), b)
	return dir
}

// original20b is original/config.json of gpt-oss-20b (spec §1).
func original20b() map[string]any {
	return map[string]any{
		"num_hidden_layers": 24, "num_experts": 32, "experts_per_token": 4,
		"vocab_size": 201088, "hidden_size": 2880, "intermediate_size": 2880, "swiglu_limit": 7.0,
		"head_dim": 64, "num_attention_heads": 64, "num_key_value_heads": 8, "sliding_window": 128,
		"initial_context_length": 4096, "rope_theta": 150000, "rope_scaling_factor": 32.0,
		"rope_ntk_alpha": 1, "rope_ntk_beta": 32,
	}
}

// hf20b is config.json of gpt-oss-20b, trimmed to the keys that matter.
func hf20b() map[string]any {
	lt := make([]any, 24)
	for l := range lt {
		lt[l] = map[bool]string{true: "sliding_attention", false: "full_attention"}[l%2 == 0]
	}
	return map[string]any{
		"model_type": "gpt_oss", "num_hidden_layers": 24, "num_local_experts": 32,
		"num_experts_per_tok": 4, "experts_per_token": 4, "vocab_size": 201088,
		"hidden_size": 2880, "intermediate_size": 2880, "num_attention_heads": 64,
		"num_key_value_heads": 8, "head_dim": 64, "sliding_window": 128, "layer_types": lt,
		"rope_theta": 150000, "initial_context_length": 4096,
		"rope_scaling": map[string]any{"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0,
			"original_max_position_embeddings": 4096, "rope_type": "yarn", "truncate": false},
		"max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "swiglu_limit": 7.0,
		"eos_token_id": 200002, "pad_token_id": 199999,
	}
}

func TestConfig20b(t *testing.T) {
	want := gpt20b()
	dir := writeConfig(t, hf20b())
	writeFile(t, filepath.Join(dir, "generation_config.json"), []byte(`{"eos_token_id":[200002,199999,200012],"pad_token_id":199999}`))
	got, err := parseHFConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("HF 20b\n got %+v\nwant %+v", got, want)
	}

	// Without a parent HF config the released stop ids are the default.
	got, err = parseOriginalConfig(writeConfig(t, original20b()), "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("original 20b\n got %+v\nwant %+v", got, want)
	}
}

func TestConfigVariants(t *testing.T) {
	t.Run("rope_parameters with rope_theta inside", func(t *testing.T) {
		m := hf20b()
		rp := m["rope_scaling"].(map[string]any)
		rp["rope_theta"] = 10000.0
		rp["factor"] = 8.0
		delete(m, "rope_scaling")
		delete(m, "rope_theta")
		m["rope_parameters"] = rp
		c, err := parseHFConfig(writeConfig(t, m))
		if err != nil {
			t.Fatal(err)
		}
		if c.RopeTheta != 10000 || c.YarnFactor != 8 {
			t.Errorf("theta %v factor %v", c.RopeTheta, c.YarnFactor)
		}
	})
	t.Run("defaults when keys are missing", func(t *testing.T) {
		m := hf20b()
		for _, k := range []string{"rope_scaling", "rope_theta", "rms_norm_eps", "swiglu_limit", "layer_types",
			"initial_context_length", "max_position_embeddings", "sliding_window", "eos_token_id", "pad_token_id",
			"num_experts_per_tok"} {
			delete(m, k)
		}
		c, err := parseHFConfig(writeConfig(t, m))
		if err != nil {
			t.Fatal(err)
		}
		want := gpt20b()
		want.EOSTokenIDs, want.PadTokenID = nil, -1
		if !reflect.DeepEqual(c, want) {
			t.Errorf("\n got %+v\nwant %+v", c, want)
		}
	})
	t.Run("eos list and swiglu_alpha", func(t *testing.T) {
		m := hf20b()
		m["eos_token_id"] = []int{200012, 200002, 999999}
		m["swiglu_alpha"] = 1.5
		dir := writeConfig(t, m)
		writeFile(t, filepath.Join(dir, "generation_config.json"), []byte(`{"eos_token_id":200002}`))
		c, err := parseHFConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c.EOSTokenIDs, []int{200012, 200002}) || c.SwigluAlpha != 1.5 {
			t.Errorf("eos %v alpha %v", c.EOSTokenIDs, c.SwigluAlpha)
		}
	})
	t.Run("original defaults filtered to the vocabulary", func(t *testing.T) {
		m := original20b()
		m["vocab_size"] = 200005
		c, err := parseOriginalConfig(writeConfig(t, m), "")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c.EOSTokenIDs, []int{200002, 199999}) || c.PadTokenID != 199999 {
			t.Errorf("eos %v pad %d", c.EOSTokenIDs, c.PadTokenID)
		}
		m["vocab_size"] = 1000
		if c, err = parseOriginalConfig(writeConfig(t, m), ""); err != nil {
			t.Fatal(err)
		}
		if len(c.EOSTokenIDs) != 0 || c.PadTokenID != -1 {
			t.Errorf("eos %v pad %d", c.EOSTokenIDs, c.PadTokenID)
		}
	})
	t.Run("integral floats accepted", func(t *testing.T) {
		m := hf20b()
		m["hidden_size"] = 2880.0
		dir := writeConfig(t, m)
		b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		// json.Marshal writes 2880.0 as 2880; force the float spelling.
		writeFile(t, filepath.Join(dir, "config.json"), []byte(string(b[:len(b)-1])+`,"num_attention_heads":64.0}`))
		if _, err := parseHFConfig(dir); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"missing layers", func(m map[string]any) { delete(m, "num_hidden_layers") }, "missing num_hidden_layers"},
		{"missing experts", func(m map[string]any) { delete(m, "num_local_experts") }, "missing num_local_experts"},
		{"experts per token > experts", func(m map[string]any) { m["num_experts_per_tok"], m["experts_per_token"] = 40, 40 }, "experts_per_token = 40 exceeds num_experts = 32"},
		{"conflicting duplicates", func(m map[string]any) { m["experts_per_token"] = 2 }, "num_experts_per_tok = 4 but experts_per_token = 2"},
		{"heads do not divide", func(m map[string]any) { m["num_key_value_heads"] = 7 }, "not a multiple of num_key_value_heads = 7"},
		{"zero hidden", func(m map[string]any) { m["hidden_size"] = 0 }, "hidden_size = 0"},
		{"negative vocab", func(m map[string]any) { m["vocab_size"] = -5 }, "vocab_size = -5"},
		{"fractional int", func(m map[string]any) { m["head_dim"] = 64.5 }, "head_dim: want an integer"},
		{"string int", func(m map[string]any) { m["head_dim"] = "64" }, "head_dim: want a number"},
		{"hidden not a block multiple", func(m map[string]any) { m["hidden_size"] = 2881 }, "MXFP4 block size"},
		{"layer_types length", func(m map[string]any) { m["layer_types"] = []string{"full_attention"} }, "1 entries for 24 layers"},
		{"unknown layer type", func(m map[string]any) {
			lt := m["layer_types"].([]any)
			lt[5] = "chunked_attention"
		}, `layer 5 has unknown type "chunked_attention"`},
		{"rope type", func(m map[string]any) { m["rope_scaling"].(map[string]any)["rope_type"] = "linear" }, "not supported: gpt-oss uses yarn"},
		{"rope truncate", func(m map[string]any) { m["rope_scaling"].(map[string]any)["truncate"] = true }, "truncate"},
		{"context conflict", func(m map[string]any) { m["initial_context_length"] = 8192 }, "initial_context_length = 8192 but original_max_position_embeddings = 4096"},
		{"eps", func(m map[string]any) { m["rms_norm_eps"] = -1 }, "rms_norm_eps = -1"},
		{"betas swapped", func(m map[string]any) {
			r := m["rope_scaling"].(map[string]any)
			r["beta_fast"], r["beta_slow"] = 1.0, 32.0
		}, "beta_slow = 32 must be below beta_fast = 1"},
		{"eos not ints", func(m map[string]any) { m["eos_token_id"] = "x" }, "eos_token_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := hf20b()
			tc.edit(m)
			_, err := parseHFConfig(writeConfig(t, m))
			wantErr(t, err, "config.json", tc.want)
		})
	}
	t.Run("not JSON", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "config.json"), []byte("{"))
		_, err := parseHFConfig(dir)
		wantErr(t, err, "config.json")
	})
	t.Run("original missing head_dim", func(t *testing.T) {
		m := original20b()
		delete(m, "head_dim")
		_, err := parseOriginalConfig(writeConfig(t, m), "")
		wantErr(t, err, "missing head_dim")
	})
	t.Run("bad generation_config", func(t *testing.T) {
		dir := writeConfig(t, hf20b())
		writeFile(t, filepath.Join(dir, "generation_config.json"), []byte(`{"eos_token_id":[1.5]}`))
		_, err := parseHFConfig(dir)
		wantErr(t, err, "generation_config.json", "eos_token_id")
	})
}
