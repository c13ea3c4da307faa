package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gptoss/gptoss/synth"
)

// runCmd runs the binary's dispatcher as a user would.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestMXFP4StatsCommand(t *testing.T) {
	code, out, errs := runCmd(t, "mxfp4", "stats", "--model", "../../testdata/tiny", "--tensor", "model.layers.0.*")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"model.layers.0.mlp.experts.down_proj", "model.layers.0.mlp.experts.gate_up_proj", "scale exponents", "codes", "saturated", "total:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, errs = runCmd(t, "mxfp4", "stats", "--model", "../../testdata/shapes", "--layout", "original", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var js struct {
		Tensors []struct {
			Name   string    `json:"name"`
			Blocks int64     `json:"blocks"`
			Codes  [16]int64 `json:"codes"`
		} `json:"tensors"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(js.Tensors) != 12 || !strings.HasPrefix(js.Tensors[0].Name, "block.0.mlp.mlp1_weight") {
		t.Errorf("original layout tensors: %+v", js.Tensors)
	}
	if code, _, errs = runCmd(t, "mxfp4", "stats", "--model", "../../testdata/tiny", "--tensor", "nothing"); code == 0 || !strings.Contains(errs, "no MXFP4 tensor") {
		t.Errorf("no match: exit %d, %s", code, errs)
	}
}

func TestMXFP4CompareCommand(t *testing.T) {
	code, out, errs := runCmd(t, "mxfp4", "compare", "--synthetic", "example")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// INT4 with one scale per row flushes the seven small values (7/8 of
	// the non-zero inputs); MXFP4 none.
	if !strings.Contains(out, "87.50%") || !strings.Contains(out, "mxfp4         0.5005") {
		t.Errorf("explanatory example:\n%s", out)
	}
	code, out, errs = runCmd(t, "mxfp4", "compare", "--synthetic", "heavy-tail", "--rows", "8", "--cols", "64", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var js struct {
		Values int                        `json:"values"`
		Errors map[string]json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil || js.Values != 512 || len(js.Errors) != 3 {
		t.Errorf("json: %v\n%s", err, out)
	}
	code, out, errs = runCmd(t, "mxfp4", "compare", "--model", "../../testdata/tiny", "--tensor", "model.layers.1.mlp.experts.gate_up_proj", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, `"snr_db": null`) { // MXFP4 values re-encode exactly
		t.Errorf("MXFP4 tensor:\n%s", out)
	}
	for _, args := range [][]string{
		{"mxfp4", "compare"},
		{"mxfp4", "compare", "--synthetic", "uniform"},
		{"mxfp4", "compare", "--synthetic", "gaussian", "--cols", "33"},
		{"mxfp4", "compare", "--model", "../../testdata/tiny"},
		{"mxfp4", "compare", "--model", "../../testdata/tiny", "--tensor", "no.such"},
		{"mxfp4", "frobnicate"},
	} {
		if code, _, errs := runCmd(t, args...); code == 0 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}

func TestMXFP4QuantizeCommandRefusesMXFP4Input(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	code, _, errs := runCmd(t, "mxfp4", "quantize", "--in", "../../testdata/tiny", "--out", out)
	if code == 0 || !strings.Contains(errs, "already MXFP4") {
		t.Errorf("exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(out, "config.json")); err == nil {
		t.Error("a refused quantize wrote a checkpoint")
	}
	if code, _, _ := runCmd(t, "mxfp4", "quantize", "--in", "../../testdata/tiny"); code == 0 {
		t.Error("missing --out accepted")
	}
}

func TestAttnCommand(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "sinks.svg")
	code, out, errs := runCmd(t, "attn", "--model", "../../testdata/tiny", "--tokens", "1,5,9,200,3,3,17,400,2,8,11,12", "--no-sinks", "--window", "3", "--svg", svg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"SINK", "WINDOW", "BEYOND", "sliding", "full", "no-sinks", "window=3", "no-sinks+window=3", "perplexity"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(svg)
	if err != nil || !bytes.HasPrefix(b, []byte("<svg")) {
		t.Errorf("svg: %v", err)
	}
	code, out, errs = runCmd(t, "attn", "--model", "../../testdata/tiny", "--tokens", "1,5,9,200", "--layer", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var js struct {
		Layers []struct {
			Layer int `json:"layer"`
		} `json:"layers"`
		Ablations []struct {
			Name string `json:"name"`
		} `json:"ablations"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil || len(js.Layers) != 1 || js.Layers[0].Layer != 1 ||
		len(js.Ablations) != 1 || js.Ablations[0].Name != "no-sinks" {
		t.Errorf("json %v:\n%s", err, out)
	}
	for _, args := range [][]string{
		{"attn", "--model", "../../testdata/tiny"},
		{"attn", "--model", "../../testdata/tiny", "--tokens", "1"},
		{"attn", "--model", "../../testdata/tiny", "--tokens", "1,2", "--layer", "9"},
		{"attn", "--model", "../../testdata/tiny", "--tokens", "1,600"},
		{"attn", "--model", "../../testdata/tiny", "--tokens", "1,2", "--window", "-2"},
		{"attn", "--tokens", "1,2"},
	} {
		if code, _, errs := runCmd(t, args...); code == 0 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}

// --prompt goes through the tokenizer: a checkpoint with the full
// o200k_harmony vocabulary.
func TestAttnPrompt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ck")
	c := synth.Config{Layers: 2, Hidden: 32, Experts: 2, ExpertsPerToken: 1, Intermediate: 32,
		Heads: 2, KVHeads: 1, HeadDim: 16, Vocab: 201088, Window: 4}
	if _, err := synth.Write(context.Background(), dir, c, synth.Options{Seed: 3}); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd(t, "attn", "--model", dir, "--prompt", "Attention sinks soak up the attention a head does not need.")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, " tokens;") || !strings.Contains(out, "no-sinks") {
		t.Errorf("output:\n%s", out)
	}
}

// A minimal dequantized checkpoint (one expert weight [1, 32, 2] of ones
// and a bias) quantizes to blocks of code 6 (E2M1 4) at scale 2^−2: the
// OCP rule puts the block's absmax 1 at 4·2^−2.
func TestMXFP4QuantizeCommand(t *testing.T) {
	root := t.TempDir()
	in, out := filepath.Join(root, "bf16"), filepath.Join(root, "mx")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	header := `{"model.layers.0.mlp.experts.down_proj":{"dtype":"BF16","shape":[1,32,2],"data_offsets":[0,128]},` +
		`"model.layers.0.mlp.experts.down_proj_bias":{"dtype":"BF16","shape":[1,2],"data_offsets":[128,132]}}`
	for len(header)%8 != 0 {
		header += " "
	}
	var f bytes.Buffer
	f.Write([]byte{byte(len(header)), 0, 0, 0, 0, 0, 0, 0})
	f.WriteString(header)
	for range 64 + 2 {
		f.Write([]byte{0x80, 0x3F}) // BF16 1.0
	}
	if err := os.WriteFile(filepath.Join(in, "model.safetensors"), f.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "config.json"), []byte(`{"model_type": "gpt_oss"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, errs := runCmd(t, "mxfp4", "quantize", "--in", in, "--out", out, "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(stdout, "quantized 1 expert weights") {
		t.Errorf("output: %s", stdout)
	}
	code, stdout, errs = runCmd(t, "mxfp4", "stats", "--model", out, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var js struct {
		Tensors []struct {
			Shape  []int     `json:"shape"`
			Codes  [16]int64 `json:"codes"`
			Scales []struct {
				Exponent int `json:"exponent"`
			} `json:"scale_exponents"`
		} `json:"tensors"`
	}
	if err := json.Unmarshal([]byte(stdout), &js); err != nil {
		t.Fatal(err)
	}
	if len(js.Tensors) != 1 || js.Tensors[0].Codes[6] != 64 || len(js.Tensors[0].Scales) != 1 || js.Tensors[0].Scales[0].Exponent != -2 ||
		!slices.Equal(js.Tensors[0].Shape, []int{1, 2, 1, 16}) {
		t.Errorf("stats of the quantized checkpoint: %s", stdout)
	}
	cfg, err := os.ReadFile(filepath.Join(out, "config.json"))
	if err != nil || !strings.Contains(string(cfg), `"quant_method": "mxfp4"`) {
		t.Errorf("config.json: %v\n%s", err, cfg)
	}
	if code, _, errs := runCmd(t, "mxfp4", "quantize", "--in", in, "--out", out, "--quiet"); code == 0 || !strings.Contains(errs, "--force") {
		t.Errorf("second run without --force: exit %d, %s", code, errs)
	}
}
