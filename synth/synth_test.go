package synth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gptoss/gptoss/mxfp4"
)

// stTensor is one parsed safetensors header entry plus its bytes.
type stTensor struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets [2]int64
	data        []byte
	file        string
}

// readST parses a safetensors file independently of the writer (and of
// the loader package), checking the framing the writer promises.
func readST(t *testing.T, path string) (names []string, ts map[string]*stTensor) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if n%8 != 0 {
		t.Errorf("%s: header length %d is not a multiple of 8", path, n)
	}
	hdr := b[8 : 8+n]
	if trimmed := bytes.TrimRight(hdr, " "); !bytes.HasSuffix(trimmed, []byte(`,"__metadata__":{"format":"pt"}}`)) {
		t.Errorf("%s: header does not end with the metadata: ...%s", path, trimmed[max(0, len(trimmed)-60):])
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	data := b[8+n:]
	ts = map[string]*stTensor{}
	for name, msg := range raw {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			DType       string   `json:"dtype"`
			Shape       []int64  `json:"shape"`
			DataOffsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(msg, &e); err != nil {
			t.Fatalf("%s: %s: %v", path, name, err)
		}
		ts[name] = &stTensor{DType: e.DType, Shape: e.Shape, DataOffsets: e.DataOffsets,
			data: data[e.DataOffsets[0]:e.DataOffsets[1]], file: filepath.Base(path)}
		names = append(names, name)
	}
	// Names sorted, data contiguous in name order and covering the section.
	sort.Slice(names, func(i, j int) bool { return ts[names[i]].DataOffsets[0] < ts[names[j]].DataOffsets[0] })
	if !sort.StringsAreSorted(names) {
		t.Errorf("%s: data not laid out in name order", path)
	}
	var off int64
	for _, nm := range names {
		e := ts[nm]
		want := int64(len(e.data))
		el := int64(1)
		for _, d := range e.Shape {
			el *= d
		}
		if e.DType == "BF16" {
			el *= 2
		}
		if e.DataOffsets[0] != off || want != el {
			t.Errorf("%s: %s at %v, want start %d and %d bytes", path, nm, e.DataOffsets, off, el)
		}
		off = e.DataOffsets[1]
	}
	if off != int64(len(data)) {
		t.Errorf("%s: data section %d bytes, tensors cover %d", path, len(data), off)
	}
	return names, ts
}

// readDir reads every safetensors file of a layout directory.
func readDir(t *testing.T, dir string) map[string]*stTensor {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	all := map[string]*stTensor{}
	for _, f := range files {
		_, ts := readST(t, f)
		for n, e := range ts {
			if all[n] != nil {
				t.Errorf("%s in two files", n)
			}
			all[n] = e
		}
	}
	return all
}

var small = Config{Layers: 3, Hidden: 64, Experts: 4, ExpertsPerToken: 2, Intermediate: 96,
	Heads: 4, KVHeads: 2, HeadDim: 24, Vocab: 300, Window: 8}

// specHF is spec §3.1's table, written out independently of tensors.go.
func specHF(c Config) map[string]string {
	H, I, E, V := c.Hidden, c.Intermediate, c.Experts, c.Vocab
	q, kv := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	m := map[string]string{
		"model.embed_tokens.weight": fmt.Sprint("BF16", []int{V, H}),
		"model.norm.weight":         fmt.Sprint("BF16", []int{H}),
		"lm_head.weight":            fmt.Sprint("BF16", []int{V, H}),
	}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		for n, s := range map[string][]int{
			"input_layernorm.weight":          {H},
			"self_attn.q_proj.weight":         {q, H},
			"self_attn.q_proj.bias":           {q},
			"self_attn.k_proj.weight":         {kv, H},
			"self_attn.k_proj.bias":           {kv},
			"self_attn.v_proj.weight":         {kv, H},
			"self_attn.v_proj.bias":           {kv},
			"self_attn.o_proj.weight":         {H, q},
			"self_attn.o_proj.bias":           {H},
			"self_attn.sinks":                 {c.Heads},
			"post_attention_layernorm.weight": {H},
			"mlp.router.weight":               {E, H},
			"mlp.router.bias":                 {E},
			"mlp.experts.gate_up_proj_bias":   {E, 2 * I},
			"mlp.experts.down_proj_bias":      {E, H},
		} {
			m[p+n] = fmt.Sprint("BF16", s)
		}
		m[p+"mlp.experts.gate_up_proj_blocks"] = fmt.Sprint("U8", []int{E, 2 * I, H / 32, 16})
		m[p+"mlp.experts.gate_up_proj_scales"] = fmt.Sprint("U8", []int{E, 2 * I, H / 32})
		m[p+"mlp.experts.down_proj_blocks"] = fmt.Sprint("U8", []int{E, H, I / 32, 16})
		m[p+"mlp.experts.down_proj_scales"] = fmt.Sprint("U8", []int{E, H, I / 32})
	}
	return m
}

func layoutOf(ts map[string]*stTensor) map[string]string {
	m := map[string]string{}
	for n, e := range ts {
		m[n] = fmt.Sprint(e.DType, e.Shape)
	}
	return m
}

func diffLayouts(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for n, w := range want {
		if g, ok := got[n]; !ok {
			t.Errorf("%s: missing %s %s", what, n, w)
		} else if g != w {
			t.Errorf("%s: %s is %s, want %s", what, n, g, w)
		}
	}
	for n, g := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("%s: unexpected %s %s", what, n, g)
		}
	}
}

func write(t *testing.T, c Config, o Options) (string, []File) {
	t.Helper()
	dir := t.TempDir()
	files, err := Write(context.Background(), dir, c, o)
	if err != nil {
		t.Fatal(err)
	}
	return dir, files
}

func TestHFLayoutSingleFile(t *testing.T) {
	dir, files := write(t, small, Options{Seed: 7})
	var names []string
	for _, f := range files {
		names = append(names, f.Path)
		fi, err := os.Stat(filepath.Join(dir, f.Path))
		if err != nil || fi.Size() != f.Size {
			t.Errorf("%s: stat %v, size %v, reported %d", f.Path, err, fi, f.Size)
		}
	}
	sort.Strings(names)
	if want := []string{"config.json", "generation_config.json", "model.safetensors"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Errorf("directory holds %d entries (temp dir left behind?)", len(ents))
	}
	diffLayouts(t, "HF", layoutOf(readDir(t, dir)), specHF(small))
	var tn []string
	for _, x := range HFTensors(small) {
		tn = append(tn, x.Name)
	}
	if len(tn) != len(specHF(small)) || !sort.StringsAreSorted(tn) {
		t.Errorf("HFTensors: %d names (sorted %v), want %d", len(tn), sort.StringsAreSorted(tn), len(specHF(small)))
	}
}

// TestShapesPresetMatchesFixture compares the layout written for the
// golden "shapes" geometry with the fixture files themselves.
func TestShapesPresetMatchesFixture(t *testing.T) {
	fix := "../testdata/shapes"
	if _, err := os.Stat(fix); err != nil {
		t.Skip("no golden fixture")
	}
	c, err := Preset("shapes")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := write(t, c, Options{Seed: 1, Original: true, ShardSize: 620000})
	diffLayouts(t, "HF vs fixture", layoutOf(readDir(t, dir)), layoutOf(readDir(t, fix)))
	diffLayouts(t, "original vs fixture", layoutOf(readDir(t, filepath.Join(dir, "original"))),
		layoutOf(readDir(t, filepath.Join(fix, "original"))))
	for _, f := range []string{"config.json", "original/config.json", "original/dtypes.json"} {
		got, _ := os.ReadFile(filepath.Join(dir, f))
		want, _ := os.ReadFile(filepath.Join(fix, f))
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the fixture's:\n%s\nwant\n%s", f, got, want)
		}
	}
	// generation_config.json: same ids (we add transformers_version as the
	// released file has).
	var got, want map[string]any
	readJSON(t, filepath.Join(dir, "generation_config.json"), &got)
	readJSON(t, filepath.Join(fix, "generation_config.json"), &want)
	delete(got, "transformers_version")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("generation_config.json %v, want %v", got, want)
	}
	// The index has the fixture's format (shard assignment may differ).
	var gi, wi indexFile
	readJSON(t, filepath.Join(dir, "model.safetensors.index.json"), &gi)
	readJSON(t, filepath.Join(fix, "model.safetensors.index.json"), &wi)
	if gi.Metadata.TotalSize != wi.Metadata.TotalSize || len(gi.WeightMap) != len(wi.WeightMap) {
		t.Errorf("index total %d / %d names, fixture %d / %d", gi.Metadata.TotalSize, len(gi.WeightMap),
			wi.Metadata.TotalSize, len(wi.WeightMap))
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !bytes.HasSuffix(b, []byte("}\n")) {
		t.Errorf("%s does not end in a newline", path)
	}
}

func TestConfigJSON(t *testing.T) {
	dir, _ := write(t, small, Options{})
	var m map[string]any
	readJSON(t, filepath.Join(dir, "config.json"), &m)
	// Every key of the released config.json (spec §1).
	keys := []string{"architectures", "attention_bias", "attention_dropout", "eos_token_id",
		"experts_per_token", "head_dim", "hidden_act", "hidden_size", "initial_context_length",
		"initializer_range", "intermediate_size", "layer_types", "max_position_embeddings",
		"model_type", "num_attention_heads", "num_experts_per_tok", "num_hidden_layers",
		"num_key_value_heads", "num_local_experts", "output_router_logits", "pad_token_id",
		"quantization_config", "rms_norm_eps", "rope_scaling", "rope_theta", "router_aux_loss_coef",
		"sliding_window", "swiglu_limit", "tie_word_embeddings", "transformers_version", "use_cache",
		"vocab_size"}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	if !reflect.DeepEqual(got, keys) {
		t.Errorf("config.json keys\n%v\nwant\n%v", got, keys)
	}
	for k, v := range map[string]float64{
		"num_hidden_layers": 3, "hidden_size": 64, "num_local_experts": 4, "num_experts_per_tok": 2,
		"experts_per_token": 2, "intermediate_size": 96, "num_attention_heads": 4,
		"num_key_value_heads": 2, "head_dim": 24, "vocab_size": 300, "sliding_window": 8,
		"eos_token_id": 299, "pad_token_id": 298, "rms_norm_eps": 1e-5, "rope_theta": 150000,
		"swiglu_limit": 7, "max_position_embeddings": 131072, "initial_context_length": 4096,
	} {
		if m[k] != v {
			t.Errorf("config.json %s = %v, want %v", k, m[k], v)
		}
	}
	if lt := fmt.Sprint(m["layer_types"]); lt != "[sliding_attention full_attention sliding_attention]" {
		t.Errorf("layer_types %s", lt)
	}
	rs := fmt.Sprint(m["rope_scaling"])
	if rs != "map[beta_fast:32 beta_slow:1 factor:32 original_max_position_embeddings:4096 rope_type:yarn truncate:false]" {
		t.Errorf("rope_scaling %s", rs)
	}
	// Full vocabulary: the real special ids.
	full := small
	full.Vocab = 201088
	bos, eos, pad, gen := full.SpecialTokens()
	if bos != 199998 || eos != 200002 || pad != 199999 || !reflect.DeepEqual(gen, []int{200002, 199999, 200012}) {
		t.Errorf("full-vocab special ids %d %d %d %v", bos, eos, pad, gen)
	}
}

func TestSharded(t *testing.T) {
	dir, files := write(t, small, Options{Seed: 3, ShardSize: 60_000})
	var shards []string
	for _, f := range files {
		if strings.HasSuffix(f.Path, ".safetensors") {
			shards = append(shards, f.Path)
		}
	}
	n := len(shards)
	if n < 3 {
		t.Fatalf("only %d shards", n)
	}
	for i, s := range shards {
		if want := fmt.Sprintf("model-%05d-of-%05d.safetensors", i, n-1); s != want {
			t.Errorf("shard %d named %s, want %s", i, s, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
		t.Error("model.safetensors written alongside shards")
	}
	var idx indexFile
	readJSON(t, filepath.Join(dir, "model.safetensors.index.json"), &idx)
	all := readDir(t, dir)
	diffLayouts(t, "sharded", layoutOf(all), specHF(small))
	var total int64
	for name, e := range all {
		total += int64(len(e.data))
		if idx.WeightMap[name] != e.file {
			t.Errorf("index maps %s to %q, it is in %s", name, idx.WeightMap[name], e.file)
		}
	}
	if len(idx.WeightMap) != len(all) || idx.Metadata.TotalSize != total {
		t.Errorf("index: %d names total_size %d, want %d and %d", len(idx.WeightMap), idx.Metadata.TotalSize, len(all), total)
	}
	// Same weights whatever the sharding.
	one, _ := write(t, small, Options{Seed: 3})
	for name, e := range readDir(t, one) {
		if !bytes.Equal(e.data, all[name].data) {
			t.Errorf("%s differs between sharded and single-file output", name)
		}
	}
}

func TestOriginalLayout(t *testing.T) {
	dir, _ := write(t, small, Options{Seed: 5, Original: true, OriginalShardSize: 100_000})
	hf := readDir(t, dir)
	og := readDir(t, filepath.Join(dir, "original"))
	c := small
	H, I, E, V := c.Hidden, c.Intermediate, c.Experts, c.Vocab
	q, kv := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	want := map[string]string{
		"embedding.weight":   fmt.Sprint("BF16", []int{V, H}),
		"norm.scale":         fmt.Sprint("BF16", []int{H}),
		"unembedding.weight": fmt.Sprint("BF16", []int{V, H}),
	}
	same := map[string]string{
		"embedding.weight": "model.embed_tokens.weight", "norm.scale": "model.norm.weight",
		"unembedding.weight": "lm_head.weight",
	}
	for l := 0; l < c.Layers; l++ {
		p, h := fmt.Sprintf("block.%d.", l), fmt.Sprintf("model.layers.%d.", l)
		for n, s := range map[string][]int{
			"attn.norm.scale": {H}, "attn.qkv.weight": {q + 2*kv, H}, "attn.qkv.bias": {q + 2*kv},
			"attn.out.weight": {H, q}, "attn.out.bias": {H}, "attn.sinks": {c.Heads},
			"mlp.norm.scale": {H}, "mlp.gate.weight": {E, H}, "mlp.gate.bias": {E},
			"mlp.mlp1_bias": {E, 2 * I}, "mlp.mlp2_bias": {E, H},
		} {
			want[p+n] = fmt.Sprint("BF16", s)
		}
		want[p+"mlp.mlp1_weight.blocks"] = fmt.Sprint("U8", []int{E, 2 * I, H / 32, 16})
		want[p+"mlp.mlp1_weight.scales"] = fmt.Sprint("U8", []int{E, 2 * I, H / 32})
		want[p+"mlp.mlp2_weight.blocks"] = fmt.Sprint("U8", []int{E, H, I / 32, 16})
		want[p+"mlp.mlp2_weight.scales"] = fmt.Sprint("U8", []int{E, H, I / 32})
		for o, n := range map[string]string{
			"attn.norm.scale": "input_layernorm.weight", "attn.out.weight": "self_attn.o_proj.weight",
			"attn.out.bias": "self_attn.o_proj.bias", "attn.sinks": "self_attn.sinks",
			"mlp.norm.scale": "post_attention_layernorm.weight", "mlp.gate.weight": "mlp.router.weight",
			"mlp.gate.bias": "mlp.router.bias", "mlp.mlp1_bias": "mlp.experts.gate_up_proj_bias",
			"mlp.mlp2_bias":          "mlp.experts.down_proj_bias",
			"mlp.mlp1_weight.blocks": "mlp.experts.gate_up_proj_blocks",
			"mlp.mlp1_weight.scales": "mlp.experts.gate_up_proj_scales",
			"mlp.mlp2_weight.blocks": "mlp.experts.down_proj_blocks",
			"mlp.mlp2_weight.scales": "mlp.experts.down_proj_scales",
		} {
			same[p+o] = h + n
		}
		for _, s := range []string{"weight", "bias"} {
			a := h + "self_attn."
			fused := bytes.Join([][]byte{hf[a+"q_proj."+s].data, hf[a+"k_proj."+s].data, hf[a+"v_proj."+s].data}, nil)
			if !bytes.Equal(og[p+"attn.qkv."+s].data, fused) {
				t.Errorf("%sattn.qkv.%s is not q‖k‖v of the HF layout", p, s)
			}
		}
	}
	diffLayouts(t, "original", layoutOf(og), want)
	for o, h := range same {
		if !bytes.Equal(og[o].data, hf[h].data) {
			t.Errorf("original %s differs from HF %s", o, h)
		}
	}
	// Sharded original/: double dash, 1-based, with an index.
	files, _ := filepath.Glob(filepath.Join(dir, "original", "model--*-of-*.safetensors"))
	if len(files) < 2 || filepath.Base(files[0]) != fmt.Sprintf("model--00001-of-%05d.safetensors", len(files)) {
		t.Errorf("original shards %v", files)
	}
	var idx indexFile
	readJSON(t, filepath.Join(dir, "original", "model.safetensors.index.json"), &idx)
	if len(idx.WeightMap) != len(og) {
		t.Errorf("original index has %d names, want %d", len(idx.WeightMap), len(og))
	}
	var dt map[string]string
	readJSON(t, filepath.Join(dir, "original", "dtypes.json"), &dt)
	for n, e := range og {
		w := e.DType
		if strings.HasSuffix(n, ".blocks") {
			w = "FP4"
		} else if strings.HasSuffix(n, ".scales") {
			w = "UE8"
		}
		if dt[n] != w {
			t.Errorf("dtypes.json %s = %q, want %q", n, dt[n], w)
		}
	}
	var oc map[string]any
	readJSON(t, filepath.Join(dir, "original", "config.json"), &oc)
	if len(oc) != 16 || oc["num_experts"] != float64(E) || oc["rope_ntk_beta"] != float64(32) || oc["rope_ntk_alpha"] != float64(1) {
		t.Errorf("original/config.json %v", oc)
	}
}

func TestDeterminism(t *testing.T) {
	o := Options{Seed: 11, Original: true, ShardSize: 80_000}
	a, fa := write(t, small, o)
	b, fb := write(t, small, o)
	if !reflect.DeepEqual(fa, fb) {
		t.Fatalf("file lists differ: %v vs %v", fa, fb)
	}
	for _, f := range fa {
		x, _ := os.ReadFile(filepath.Join(a, f.Path))
		y, _ := os.ReadFile(filepath.Join(b, f.Path))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with the same seed", f.Path)
		}
	}
	o.Seed = 12
	c, _ := write(t, small, o)
	ta, tc := readDir(t, a), readDir(t, c)
	for n := range ta {
		if bytes.Equal(ta[n].data, tc[n].data) {
			t.Errorf("%s identical for seeds 11 and 12", n)
		}
	}
	// Distinct tensors of the same shape get distinct values.
	if bytes.Equal(ta["model.layers.0.self_attn.k_proj.weight"].data, ta["model.layers.0.self_attn.v_proj.weight"].data) {
		t.Error("k_proj and v_proj identical")
	}
}

// TestWorkersIdentical checks that the output does not depend on the number
// of workers and is byte for byte what the single-threaded writer produced
// before tensors were generated in parallel (the digest below). The shard
// sizes put some experts' scales in another file than their blocks, in both
// layouts.
func TestWorkersIdentical(t *testing.T) {
	o := Options{Seed: 11, Original: true, ShardSize: 40_000, OriginalShardSize: 65_000}
	var split int
	dir, _ := write(t, small, o)
	for _, sub := range []string{"", "original/"} {
		var idx indexFile
		readJSON(t, filepath.Join(dir, sub+"model.safetensors.index.json"), &idx)
		for n, f := range idx.WeightMap {
			for _, sfx := range [][2]string{{"_blocks", "_scales"}, {".blocks", ".scales"}} {
				if base, ok := strings.CutSuffix(n, sfx[0]); ok && idx.WeightMap[base+sfx[1]] != f {
					split++
				}
			}
		}
	}
	if split < 2 {
		t.Fatalf("only %d experts have scales and blocks in different files", split)
	}
	// sha256sum's lines for every file, sorted by path, then their sha256.
	digest := func(dir string, files []File) string {
		var paths []string
		for _, f := range files {
			paths = append(paths, f.Path)
		}
		sort.Strings(paths)
		var sums strings.Builder
		for _, p := range paths {
			b, err := os.ReadFile(filepath.Join(dir, p))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&sums, "%x  %s\n", sha256.Sum256(b), p)
		}
		return fmt.Sprintf("%x", sha256.Sum256([]byte(sums.String())))
	}
	one := o
	one.Workers = 1
	a, fa := write(t, small, one)
	if got, want := digest(a, fa), "d5ccbb573e75aef3a92e69576e1230ae2bf0d43c3e3cdab9956cc86a896a75ae"; got != want {
		t.Errorf("1 worker: digest %s, want %s (the serial writer's)", got, want)
	}
	for _, workers := range []int{2, 3, 8, 0} {
		o.Workers = workers
		b, fb := write(t, small, o)
		if !reflect.DeepEqual(fa, fb) {
			t.Fatalf("%d workers: file lists differ: %v vs %v", workers, fb, fa)
		}
		for _, f := range fa {
			x, _ := os.ReadFile(filepath.Join(a, f.Path))
			y, err := os.ReadFile(filepath.Join(b, f.Path))
			if err != nil || !bytes.Equal(x, y) {
				t.Errorf("%d workers: %s differs from 1 worker's (%v)", workers, f.Path, err)
			}
		}
	}
}

// TestProgress checks the Progress contract with several workers: one call
// per tensor, never two at once, done growing to the total.
func TestProgress(t *testing.T) {
	var calls int
	var busy atomic.Bool
	var last, total int64
	o := Options{Seed: 3, Original: true, ShardSize: 40_000, Workers: 4,
		Progress: func(done, tot int64) {
			if !busy.CompareAndSwap(false, true) {
				t.Error("overlapping Progress calls")
			}
			defer busy.Store(false)
			calls++
			if done <= last || tot <= 0 || (total != 0 && tot != total) {
				t.Errorf("Progress(%d, %d) after done %d, total %d", done, tot, last, total)
			}
			last, total = done, tot
		}}
	write(t, small, o)
	var want, size int64
	for _, ts := range [][]Tensor{HFTensors(small), OriginalTensors(small)} {
		for _, x := range ts {
			want++
			size += x.Size()
		}
	}
	if int64(calls) != want || last != size || total != size {
		t.Errorf("%d calls, last done %d of %d; want %d calls ending at %d", calls, last, total, want, size)
	}
}

func bf16ToF32(b []byte) []float32 {
	out := make([]float32, len(b)/2)
	for i := range out {
		out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
	}
	return out
}

func rms(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

// TestWeightStatistics checks the scales that keep activations sane.
func TestWeightStatistics(t *testing.T) {
	c := Config{Layers: 2, Hidden: 256, Experts: 4, ExpertsPerToken: 2, Intermediate: 128,
		Heads: 4, KVHeads: 2, HeadDim: 64, Vocab: 1000, Window: 8}
	dir, _ := write(t, c, Options{Seed: 2})
	ts := readDir(t, dir)
	near := func(name string, got, want float64) {
		if math.Abs(got-want) > 0.05*want {
			t.Errorf("%s rms %.4g, want %.4g", name, got, want)
		}
	}
	near("embed", rms(bf16ToF32(ts["model.embed_tokens.weight"].data)), 1)
	near("q_proj", rms(bf16ToF32(ts["model.layers.0.self_attn.q_proj.weight"].data)), 1/16.0)
	near("norm", rms(bf16ToF32(ts["model.layers.1.input_layernorm.weight"].data)), math.Sqrt(1+0.01))
	// Experts: decode and compare with the float std (MXFP4 adds ~10% noise).
	for _, w := range []struct {
		name string
		g    int
		std  float64
	}{{"gate_up_proj", 256 / 32, 1 / 16.0}, {"down_proj", 128 / 32, 0.5 / math.Sqrt(128)}} {
		p := "model.layers.1.mlp.experts." + w.name
		blocks, scales := ts[p+"_blocks"].data, ts[p+"_scales"].data
		vals := make([]float32, len(scales)*32)
		mxfp4.DecodeRow(vals, blocks, scales)
		if r := rms(vals); math.Abs(r-w.std) > 0.15*w.std {
			t.Errorf("%s decoded rms %.4g, want ≈ %.4g", w.name, r, w.std)
		}
		for _, s := range scales {
			if s < 110 || s > 130 {
				t.Fatalf("%s scale byte %d outside the plausible range", w.name, s)
			}
		}
	}
}

// TestStreamingMemory writes a checkpoint whose gate_up blocks tensor is
// ~100 MB and checks that total allocation stays far below that: tensors
// are generated and written in bounded chunks, never held whole.
func TestStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~150 MB")
	}
	c := Config{Layers: 1, Hidden: 1024, Experts: 96, ExpertsPerToken: 1, Intermediate: 1024,
		Heads: 1, KVHeads: 1, HeadDim: 32, Vocab: 8, Window: 8}
	var biggest int64
	for _, x := range HFTensors(c) {
		biggest = max(biggest, x.Size())
	}
	if biggest < 90<<20 {
		t.Fatalf("largest tensor only %d bytes", biggest)
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	// Memory is bounded per worker: ~1.1 MiB of write buffers + row
	// buffers each (expert scales go straight to the file, never held).
	dir, _ := write(t, c, Options{Seed: 1, Workers: 4})
	runtime.ReadMemStats(&m1)
	alloc := m1.TotalAlloc - m0.TotalAlloc
	if limit := uint64(biggest / 8); alloc > limit {
		t.Errorf("allocated %d bytes writing a %d-byte tensor (limit %d)", alloc, biggest, limit)
	}
	t.Logf("largest tensor %d bytes, total allocation %d bytes", biggest, alloc)
	fi, err := os.Stat(filepath.Join(dir, "model.safetensors"))
	if err != nil || fi.Size() < biggest {
		t.Errorf("model.safetensors: %v %v", fi, err)
	}
}

// cancelAfter is a context cancelled once its Err has been polled n times,
// i.e. in the middle of writing.
type cancelAfter struct {
	context.Context
	n atomic.Int64 // the workers poll it concurrently
}

func newCancelAfter(n int64) *cancelAfter {
	c := &cancelAfter{Context: context.Background()}
	c.n.Store(n)
	return c
}

func (c *cancelAfter) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func TestCancelLeavesNothing(t *testing.T) {
	for _, workers := range []int{1, 4} {
		dir := t.TempDir()
		_, err := Write(newCancelAfter(40), dir, small, Options{Seed: 1, ShardSize: 60_000, Workers: workers})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%d workers: err = %v, want context.Canceled", workers, err)
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			t.Errorf("%d workers: cancelled run left %s", workers, e.Name())
		}
		// A directory Write created is removed again.
		fresh := filepath.Join(dir, "new")
		if _, err := Write(newCancelAfter(40), fresh, small, Options{Seed: 1, Workers: workers}); !errors.Is(err, context.Canceled) {
			t.Fatalf("%d workers: err = %v, want context.Canceled", workers, err)
		}
		if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%d workers: cancelled run left the directory it created: %v", workers, err)
		}
	}
}

func TestRefusesExistingCheckpoint(t *testing.T) {
	dir, _ := write(t, small, Options{Seed: 1, ShardSize: 60_000})
	if _, err := Write(context.Background(), dir, small, Options{Seed: 2}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second write without Force: %v", err)
	}
	// Force to a single file: the old shards and index must go.
	if _, err := Write(context.Background(), dir, small, Options{Seed: 2, Force: true}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"config.json", "generation_config.json", "model.safetensors"}; !reflect.DeepEqual(names, want) {
		t.Errorf("after --force: %v, want %v", names, want)
	}
}

func TestValidate(t *testing.T) {
	for _, p := range PresetNames() {
		c, err := Preset(p)
		if err != nil || c.Validate() != nil {
			t.Errorf("preset %s: %v %v", p, err, c.Validate())
		}
	}
	if _, err := Preset("7b"); err == nil {
		t.Error("unknown preset accepted")
	}
	bad := []func(*Config){
		func(c *Config) { c.Hidden = 48 },
		func(c *Config) { c.Intermediate = 100 },
		func(c *Config) { c.HeadDim = 15 },
		func(c *Config) { c.KVHeads = 3 },
		func(c *Config) { c.ExpertsPerToken = 5 },
		func(c *Config) { c.Vocab = 3 },
		func(c *Config) { c.Layers = 0 },
		func(c *Config) { c.Window = -1 },
		func(c *Config) { c.Hidden = 1 << 30 },
		func(c *Config) { c.Experts, c.Intermediate, c.Hidden = 1<<24, 1<<23, 1<<23 },
	}
	for i, f := range bad {
		c := small
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("case %d: %+v accepted", i, c)
		}
		if _, err := Write(context.Background(), t.TempDir(), c, Options{}); err == nil {
			t.Errorf("case %d: Write accepted %+v", i, c)
		}
	}
}

// TestRealGeometrySizes checks the 20b and 120b presets against the byte
// totals of the released checkpoints (spec §3.1), without writing them.
func TestRealGeometrySizes(t *testing.T) {
	for p, want := range map[string]int64{"20b": 13_761_264_768, "120b": 65_248_815_744} {
		c, _ := Preset(p)
		var total int64
		for _, x := range HFTensors(c) {
			total += x.Size()
		}
		var orig int64
		for _, x := range OriginalTensors(c) {
			orig += x.Size()
		}
		if total != want || orig != want {
			t.Errorf("%s: HF %d bytes, original %d, want %d", p, total, orig, want)
		}
		hfMax, origMax := DefaultShardSize(p)
		es := newSources(c).hfEntries()
		nHF := len(planShards(es, hfMax))
		nOrig := len(planShards(newSources(c).originalEntries(), origMax))
		wantHF, wantOrig := map[string]int{"20b": 3, "120b": 15}[p], map[string]int{"20b": 1, "120b": 7}[p]
		if nHF != wantHF || nOrig != wantOrig {
			t.Errorf("%s: %d HF shards, %d original, want %d and %d (as released)", p, nHF, nOrig, wantHF, wantOrig)
		}
	}
}

func TestBF16(t *testing.T) {
	for _, c := range []struct {
		f    float32
		want uint16
	}{
		{1, 0x3F80}, {-2, 0xC000}, {0, 0},
		{math.Float32frombits(0x3F808000), 0x3F80}, // tie, even stays
		{math.Float32frombits(0x3F818000), 0x3F82}, // tie, odd rounds up
		{math.Float32frombits(0x3F808001), 0x3F81},
		{math.MaxFloat32, 0x7F80}, // rounds to +Inf
		{float32(math.Inf(-1)), 0xFF80},
	} {
		if got := bf16(c.f); got != c.want {
			t.Errorf("bf16(%g) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
	if got := bf16(float32(math.NaN())); got&0x7F80 != 0x7F80 || got&0x7F == 0 {
		t.Errorf("bf16(NaN) = %#04x, not a NaN", got)
	}
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string]int64{
		"5GB": 5e9, "4.5GB": 4.5e9, "512MiB": 512 << 20, "2g": 2e9, "0": 0, "1000": 1000,
		"10 kb": 10_000, "1GiB": 1 << 30, "3B": 3, "1e9": 1e9,
	} {
		if got, err := ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "GB", "-1GB", "5XB", "1e30TB", "NaN"} {
		if _, err := ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) accepted", s)
		}
	}
}
