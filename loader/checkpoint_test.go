package loader

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

func open(t *testing.T, dir string) *Checkpoint {
	t.Helper()
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// allTensors flattens Weights into name → tensor in a fixed order, so two
// checkpoints can be compared field by field.
func allTensors(w Weights) map[string]Tensor {
	m := map[string]Tensor{"embed": w.Embed, "final_norm": w.FinalNorm, "lm_head": w.LMHead}
	for l, lw := range w.Layers {
		for name, t := range map[string]Tensor{
			"attn_norm": lw.AttnNorm, "q": lw.Q, "k": lw.K, "v": lw.V,
			"q_bias": lw.QBias, "k_bias": lw.KBias, "v_bias": lw.VBias,
			"o": lw.O, "o_bias": lw.OBias, "sinks": lw.Sinks, "mlp_norm": lw.MLPNorm,
			"router": lw.Router, "router_bias": lw.RouterBias,
			"gate_up_blocks": lw.GateUp.Blocks, "gate_up_scales": lw.GateUp.Scales, "gate_up_bias": lw.GateUp.Bias,
			"down_blocks": lw.Down.Blocks, "down_scales": lw.Down.Scales, "down_bias": lw.Down.Bias,
		} {
			m[fmt.Sprintf("%d.%s", l, name)] = t
		}
	}
	return m
}

func TestOpenTiny(t *testing.T) {
	c := open(t, tinyDir)
	if c.Layout != LayoutHF || c.Dir != tinyDir {
		t.Fatalf("layout %q dir %q", c.Layout, c.Dir)
	}
	if len(c.Weights.Layers) != 4 {
		t.Fatalf("%d layers", len(c.Weights.Layers))
	}
	raw, err := os.ReadFile(filepath.Join(tinyDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(filepath.Join(tinyDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, ds, err := ParseHeader(raw, int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	// Every mapped weight must be exactly the named tensor's bytes.
	l2 := c.Weights.Layers[2]
	for name, got := range map[string]Tensor{
		"model.embed_tokens.weight":                      c.Weights.Embed,
		"lm_head.weight":                                 c.Weights.LMHead,
		"model.norm.weight":                              c.Weights.FinalNorm,
		"model.layers.2.self_attn.k_proj.weight":         l2.K,
		"model.layers.2.self_attn.sinks":                 l2.Sinks,
		"model.layers.2.mlp.experts.gate_up_proj_blocks": l2.GateUp.Blocks,
		"model.layers.2.mlp.experts.down_proj_scales":    l2.Down.Scales,
		"model.layers.2.post_attention_layernorm.weight": l2.MLPNorm,
		"model.layers.2.mlp.experts.gate_up_proj_bias":   l2.GateUp.Bias,
		"model.layers.2.mlp.router.bias":                 l2.RouterBias,
		"model.layers.2.self_attn.o_proj.weight":         l2.O,
		"model.layers.2.mlp.experts.down_proj_blocks":    l2.Down.Blocks,
		"model.layers.2.mlp.experts.gate_up_proj_scales": l2.GateUp.Scales,
		"model.layers.2.input_layernorm.weight":          l2.AttnNorm,
		"model.layers.2.mlp.experts.down_proj_bias":      l2.Down.Bias,
		"model.layers.2.self_attn.q_proj.bias":           l2.QBias,
		"model.layers.2.self_attn.v_proj.weight":         l2.V,
		"model.layers.2.mlp.router.weight":               l2.Router,
		"model.layers.2.self_attn.o_proj.bias":           l2.OBias,
		"model.layers.2.self_attn.q_proj.weight":         l2.Q,
		"model.layers.2.self_attn.k_proj.bias":           l2.KBias,
		"model.layers.2.self_attn.v_proj.bias":           l2.VBias,
	} {
		ti, ok := f.Info(name)
		if !ok {
			t.Fatalf("%s not in file", name)
		}
		if got.Name != name || got.DType != ti.DType || !slices.Equal(got.Shape, ti.Shape) {
			t.Errorf("%s mapped as %s %s %v", name, got.Name, got.DType, got.Shape)
		}
		if !bytes.Equal(got.Data, raw[ds+ti.Begin:ds+ti.End]) {
			t.Errorf("%s: bytes differ", name)
		}
	}
	if got := l2.GateUp.Blocks.Shape; !slices.Equal(got, []int{8, 128, 2, 16}) {
		t.Errorf("gate_up blocks shape %v", got)
	}
	if got := c.BytesPerDecodedToken(); got != c.Config.BytesPerDecodedToken() || got <= 0 {
		t.Errorf("BytesPerDecodedToken %d", got)
	}
}

// sumWeightBytes is every byte the weight set covers.
func sumWeightBytes(w Weights) int64 {
	var n int64
	for _, t := range allTensors(w) {
		n += int64(len(t.Data))
	}
	return n
}

func TestShapesHFMatchesOriginal(t *testing.T) {
	hf := open(t, shapesDir)
	if hf.Layout != LayoutHF {
		t.Fatalf("shapes opened as %q", hf.Layout)
	}
	if got := hf.Files(); !slices.Equal(got, []string{
		"model-00000-of-00002.safetensors", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
	}) {
		t.Fatalf("files %v", got)
	}
	orig := open(t, shapesOrigin)
	forced, err := OpenLayout(shapesDir, LayoutOriginal)
	if err != nil {
		t.Fatal(err)
	}
	defer forced.Close()
	for _, o := range []*Checkpoint{orig, forced} {
		if o.Layout != LayoutOriginal || filepath.Clean(o.Dir) != filepath.Clean(shapesOrigin) {
			t.Fatalf("layout %q dir %q", o.Layout, o.Dir)
		}
		if !reflect.DeepEqual(o.Config, hf.Config) {
			t.Errorf("configs differ:\n hf       %+v\n original %+v", hf.Config, o.Config)
		}
		a, b := allTensors(hf.Weights), allTensors(o.Weights)
		for name, x := range a {
			y := b[name]
			if x.DType != y.DType || !slices.Equal(x.Shape, y.Shape) || !bytes.Equal(x.Data, y.Data) {
				t.Errorf("%s: hf %s %s %v vs original %s %s %v", name, x.Name, x.DType, x.Shape, y.Name, y.DType, y.Shape)
			}
		}
	}

	// The index's total_size counts every tensor once: the weight set must
	// cover exactly that many bytes.
	var idx struct {
		Metadata struct {
			TotalSize int64 `json:"total_size"`
		} `json:"metadata"`
	}
	b, err := os.ReadFile(filepath.Join(shapesDir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	if got := sumWeightBytes(hf.Weights); got != idx.Metadata.TotalSize {
		t.Errorf("HF weights cover %d bytes, index total_size %d", got, idx.Metadata.TotalSize)
	}
	if got := sumWeightBytes(orig.Weights); got != idx.Metadata.TotalSize {
		t.Errorf("original weights cover %d bytes, index total_size %d", got, idx.Metadata.TotalSize)
	}
}

// The fused qkv must be split without copying: Q, K and V are consecutive
// windows of the mapped tensor.
func TestOriginalQKVZeroCopy(t *testing.T) {
	c := open(t, shapesOrigin)
	cfg := c.Config
	q, kv := cfg.NumHeads*cfg.HeadDim, cfg.NumKVHeads*cfg.HeadDim
	for l, lw := range c.Weights.Layers {
		qkv, err := c.Tensor(fmt.Sprintf("block.%d.attn.qkv.weight", l))
		if err != nil {
			t.Fatal(err)
		}
		bias, err := c.Tensor(fmt.Sprintf("block.%d.attn.qkv.bias", l))
		if err != nil {
			t.Fatal(err)
		}
		row := cfg.HiddenSize * 2
		for _, p := range []struct {
			t        Tensor
			from     Tensor
			off, len int
		}{
			{lw.Q, qkv, 0, q * row}, {lw.K, qkv, q * row, kv * row}, {lw.V, qkv, (q + kv) * row, kv * row},
			{lw.QBias, bias, 0, q * 2}, {lw.KBias, bias, q * 2, kv * 2}, {lw.VBias, bias, (q + kv) * 2, kv * 2},
		} {
			if len(p.t.Data) != p.len || unsafe.SliceData(p.t.Data) != &p.from.Data[p.off] {
				t.Fatalf("layer %d %s: not the window [%d,+%d) of %s", l, p.t.Name, p.off, p.len, p.from.Name)
			}
			if cap(p.t.Data) != len(p.t.Data) {
				t.Fatalf("layer %d %s: capacity reaches into the next part", l, p.t.Name)
			}
		}
		if !slices.Equal(lw.Q.Shape, []int{q, cfg.HiddenSize}) || !slices.Equal(lw.KBias.Shape, []int{kv}) {
			t.Fatalf("layer %d: Q %v KBias %v", l, lw.Q.Shape, lw.KBias.Shape)
		}
	}
}

func TestTensorsListing(t *testing.T) {
	c := open(t, shapesDir)
	list := c.Tensors()
	if len(list) != 3+6*19 {
		t.Fatalf("%d tensors, want %d", len(list), 3+6*19)
	}
	if !slices.IsSortedFunc(list, func(a, b TensorEntry) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("not sorted by name")
	}
	var total int64
	for _, e := range list {
		total += e.Bytes()
		if !strings.HasPrefix(e.File, "model-0000") {
			t.Errorf("%s in %q", e.Name, e.File)
		}
	}
	if total != 1760352 {
		t.Errorf("listed bytes %d, want the index total 1760352", total)
	}
	// The index puts layer 0's sinks in the second shard.
	i := slices.IndexFunc(list, func(e TensorEntry) bool { return e.Name == "model.layers.0.self_attn.sinks" })
	if i < 0 || list[i].File != "model-00001-of-00002.safetensors" || !slices.Equal(list[i].Shape, []int{8}) || list[i].DType != BF16 {
		t.Errorf("sinks entry %+v", list[i])
	}
	if _, err := c.Tensor("model.layers.0.self_attn.sinks"); err != nil {
		t.Error(err)
	}
	_, err := c.Tensor("nope")
	wantErr(t, err, "nope")
}

func TestOpenDetection(t *testing.T) {
	// A repository root without top-level weights falls back to original/.
	root := t.TempDir()
	copyDir(t, shapesOrigin, filepath.Join(root, "original"))
	writeFile(t, filepath.Join(root, "config.json"), []byte(`{"model_type":"gpt_oss","eos_token_id":7,"pad_token_id":8}`))
	writeFile(t, filepath.Join(root, "generation_config.json"), []byte(`{"eos_token_id":[7,9]}`))
	c := open(t, root)
	if c.Layout != LayoutOriginal || c.Dir != filepath.Join(root, "original") {
		t.Fatalf("layout %q dir %q", c.Layout, c.Dir)
	}
	if !slices.Equal(c.Config.EOSTokenIDs, []int{7, 9}) || c.Config.PadTokenID != 8 {
		t.Errorf("stop ids %v pad %d, want the root's", c.Config.EOSTokenIDs, c.Config.PadTokenID)
	}

	// A lone original/ directory: released defaults, filtered to the tiny
	// vocabulary, i.e. none.
	lone := tempCopy(t, shapesOrigin)
	c = open(t, lone)
	if c.Layout != LayoutOriginal || len(c.Config.EOSTokenIDs) != 0 || c.Config.PadTokenID != -1 {
		t.Errorf("lone original: layout %q eos %v pad %d", c.Layout, c.Config.EOSTokenIDs, c.Config.PadTokenID)
	}

	// Forcing HF on an original/ directory fails on its config.
	_, err := OpenLayout(shapesOrigin, LayoutHF)
	wantErr(t, err, "original/ config")
	_, err = OpenLayout(tinyDir, "gguf")
	wantErr(t, err, `unknown layout "gguf"`)
	_, err = Open(t.TempDir())
	wantErr(t, err, "no checkpoint found")
	_, err = Open(filepath.Join(tinyDir, "config.json"))
	wantErr(t, err, "not a directory")
	_, err = Open(filepath.Join(t.TempDir(), "absent"))
	wantErr(t, err, "absent")
}

func TestCheckpointErrors(t *testing.T) {
	edit := func(t *testing.T, src, file string, fn func([]Tensor) []Tensor) string {
		dir := tempCopy(t, src)
		rewriteSafetensors(t, filepath.Join(dir, file), fn)
		return dir
	}
	drop := func(name string) func([]Tensor) []Tensor {
		return func(ts []Tensor) []Tensor {
			return slices.DeleteFunc(ts, func(x Tensor) bool { return x.Name == name })
		}
	}
	replace := func(name string, fn func(*Tensor)) func([]Tensor) []Tensor {
		return func(ts []Tensor) []Tensor {
			for i := range ts {
				if ts[i].Name == name {
					fn(&ts[i])
				}
			}
			return ts
		}
	}

	t.Run("missing tensor", func(t *testing.T) {
		dir := edit(t, tinyDir, "model.safetensors", drop("model.layers.2.self_attn.sinks"))
		_, err := Open(dir)
		wantErr(t, err, "loader: model.layers.2.self_attn.sinks: missing (want BF16 [4])")
	})
	t.Run("misshaped tensor", func(t *testing.T) {
		dir := edit(t, tinyDir, "model.safetensors", replace("model.layers.3.self_attn.q_proj.weight", func(x *Tensor) {
			x.Shape = []int{32, 128}
		}))
		_, err := Open(dir)
		wantErr(t, err, "loader: model.layers.3.self_attn.q_proj.weight: shape [32 128], want [64 64]")
	})
	t.Run("wrong dtype", func(t *testing.T) {
		dir := edit(t, tinyDir, "model.safetensors", replace("model.layers.1.self_attn.sinks", func(x *Tensor) {
			x.DType, x.Shape = F16, []int{4}
		}))
		_, err := Open(dir)
		wantErr(t, err, "loader: model.layers.1.self_attn.sinks: dtype F16, want BF16")
	})
	t.Run("misshaped fused qkv", func(t *testing.T) {
		dir := edit(t, shapesOrigin, "model.safetensors", replace("block.4.attn.qkv.weight", func(x *Tensor) {
			x.Shape = []int{96, 192}
		}))
		_, err := Open(dir)
		wantErr(t, err, "loader: block.4.attn.qkv.weight: shape [96 192], want [192 96]")
	})
	t.Run("dequantized experts", func(t *testing.T) {
		dir := edit(t, tinyDir, "model.safetensors", func(ts []Tensor) []Tensor {
			for i := range ts {
				if strings.HasSuffix(ts[i].Name, "gate_up_proj_blocks") {
					// [E, H, 2I] BF16 is 8·64·128·2 bytes; the blocks have 8·128·2·16.
					ts[i].Name = strings.TrimSuffix(ts[i].Name, "_blocks")
					ts[i].DType, ts[i].Shape = BF16, []int{8, 64, 128}
					ts[i].Data = make([]byte, 8*64*128*2)
				}
			}
			return ts
		})
		_, err := Open(dir)
		wantErr(t, err, "model.layers.0.mlp.experts.gate_up_proj: dequantized BF16 experts are not supported: expects MXFP4 experts")
	})
	t.Run("extra tensors ignored", func(t *testing.T) {
		dir := edit(t, tinyDir, "model.safetensors", func(ts []Tensor) []Tensor {
			return append(ts, Tensor{Name: "model.layers.9.mystery", DType: F32, Shape: []int{3}, Data: make([]byte, 12)})
		})
		c := open(t, dir)
		if len(c.Tensors()) != 80 {
			t.Errorf("%d tensors listed", len(c.Tensors()))
		}
	})
	t.Run("truncated shard", func(t *testing.T) {
		dir := tempCopy(t, shapesDir)
		path := filepath.Join(dir, "model-00001-of-00002.safetensors")
		if err := os.Truncate(path, 100000); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir)
		wantErr(t, err, path, "run past")
	})
	t.Run("shard lacks an indexed tensor", func(t *testing.T) {
		dir := edit(t, shapesDir, "model-00001-of-00002.safetensors", drop("model.layers.0.self_attn.sinks"))
		_, err := Open(dir)
		wantErr(t, err, "maps model.layers.0.self_attn.sinks to model-00001-of-00002.safetensors, which has no such tensor")
	})
	indexEdit := func(t *testing.T, fn func(wm map[string]any)) string {
		dir := tempCopy(t, shapesDir)
		editJSON(t, filepath.Join(dir, IndexFile), func(m map[string]any) { fn(m["weight_map"].(map[string]any)) })
		return dir
	}
	t.Run("index missing an entry", func(t *testing.T) {
		dir := indexEdit(t, func(wm map[string]any) { delete(wm, "model.layers.5.mlp.router.bias") })
		_, err := Open(dir)
		wantErr(t, err, "loader: model.layers.5.mlp.router.bias: missing (want BF16 [16])")
	})
	t.Run("index names an absent shard", func(t *testing.T) {
		dir := indexEdit(t, func(wm map[string]any) { wm["model.norm.weight"] = "model-00003-of-00002.safetensors" })
		_, err := Open(dir)
		wantErr(t, err, "model-00003-of-00002.safetensors")
	})
	t.Run("index escapes the directory", func(t *testing.T) {
		dir := indexEdit(t, func(wm map[string]any) { wm["model.norm.weight"] = "../x.safetensors" })
		_, err := Open(dir)
		wantErr(t, err, "inside the checkpoint directory")
	})
	t.Run("index without weight_map", func(t *testing.T) {
		dir := tempCopy(t, shapesDir)
		writeFile(t, filepath.Join(dir, IndexFile), []byte(`{"metadata":{}}`))
		_, err := Open(dir)
		wantErr(t, err, IndexFile, "weight_map")
	})
	t.Run("index not JSON", func(t *testing.T) {
		dir := tempCopy(t, shapesDir)
		writeFile(t, filepath.Join(dir, IndexFile), []byte(`{"weight_map":`))
		_, err := Open(dir)
		wantErr(t, err, IndexFile)
	})
	t.Run("config disagrees with tensors", func(t *testing.T) {
		dir := tempCopy(t, tinyDir)
		editJSON(t, filepath.Join(dir, "config.json"), func(m map[string]any) { m["num_local_experts"] = 4 })
		_, err := Open(dir)
		wantErr(t, err, "loader: model.layers.0.mlp.router.weight: shape [8 64], want [4 64]")
	})
	t.Run("more layers than stored", func(t *testing.T) {
		dir := tempCopy(t, tinyDir)
		editJSON(t, filepath.Join(dir, "config.json"), func(m map[string]any) {
			m["num_hidden_layers"] = 5
			m["layer_types"] = append(m["layer_types"].([]any), "sliding_attention")
		})
		_, err := Open(dir)
		wantErr(t, err, "loader: model.layers.4.input_layernorm.weight: missing")
	})
}
