package analysis

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gptoss/gptoss/backend/cpu"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/model"
	"github.com/gptoss/gptoss/mxfp4"
	"github.com/gptoss/gptoss/synth"
)

// smallConfig is a geometry that synthesises and runs in well under a
// second, with in ≠ out for both expert weights so a missed transpose
// shows.
func smallConfig() synth.Config {
	return synth.Config{Layers: 2, Hidden: 64, Experts: 4, ExpertsPerToken: 2, Intermediate: 96,
		Heads: 4, KVHeads: 2, HeadDim: 16, Vocab: 512, Window: 4}
}

func writeSynth(t *testing.T, dir string, shardSize int64) {
	t.Helper()
	if _, err := synth.Write(context.Background(), dir, smallConfig(), synth.Options{Seed: 5, ShardSize: shardSize}); err != nil {
		t.Fatal(err)
	}
}

var expertBlocks = regexp.MustCompile(`^(model\.layers\.\d+\.mlp\.experts\.(?:gate_up_proj|down_proj))_(blocks|scales)$`)

// dequantize writes the BF16 variant of the MXFP4 checkpoint in src to dst
// the way transformers' dequantize does: each expert weight decoded (exact
// in BF16) and transposed to [E, in, out] under the name without suffix;
// everything else unchanged; quantization_config dropped from config.json.
// Shards keep their names.
func dequantize(t *testing.T, src, dst string) {
	t.Helper()
	s, err := OpenStore(src)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	weightMap := map[string]string{}
	indexed := false
	for _, sh := range s.Shards() {
		indexed = indexed || sh.Indexed
		var es []entry
		for _, name := range sh.Names {
			tt, err := s.Tensor(name)
			if err != nil {
				t.Fatal(err)
			}
			m := expertBlocks.FindStringSubmatch(name)
			switch {
			case m == nil:
				es = append(es, entry{Name: name, DType: tt.DType, Shape: tt.Shape, write: copyBytes(tt.Data)})
			case m[2] == "blocks":
				sc, err := s.Tensor(m[1] + "_scales")
				if err != nil {
					t.Fatal(err)
				}
				E, out, G := tt.Shape[0], tt.Shape[1], tt.Shape[2]
				in := G * mxfp4.BlockSize
				data := make([]byte, 2*E*in*out)
				row := make([]float32, in)
				for e := range E {
					for r := range out {
						i := e*out + r
						mxfp4.DecodeRow(row, tt.Data[i*G*16:(i+1)*G*16], sc.Data[i*G:(i+1)*G])
						for c, v := range row {
							bits := math.Float32bits(v)
							if bits&0xFFFF != 0 {
								t.Fatalf("%s: %g is not exact in BF16", name, v)
							}
							binary.LittleEndian.PutUint16(data[2*((e*in+c)*out+r):], uint16(bits>>16))
						}
					}
				}
				es = append(es, entry{Name: m[1], DType: loader.BF16, Shape: []int{E, in, out}, write: copyBytes(data)})
			}
		}
		slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.Name, b.Name) })
		for _, e := range es {
			weightMap[e.Name] = sh.Path
		}
		if err := writeSafetensors(filepath.Join(dst, sh.Path), es); err != nil {
			t.Fatal(err)
		}
	}
	if indexed {
		idx := map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": weightMap}
		b, _ := json.Marshal(idx)
		if err := os.WriteFile(filepath.Join(dst, loader.IndexFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var cfg map[string]json.RawMessage
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	delete(cfg, "quantization_config")
	b, _ = json.Marshal(cfg)
	for name, data := range map[string][]byte{"config.json": b} {
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyFile(filepath.Join(dst, "generation_config.json"), filepath.Join(src, "generation_config.json")); err != nil {
		t.Fatal(err)
	}
}

// Synth an MXFP4 checkpoint, dequantize it to the BF16 variant, quantize
// that back: every file comes back byte for byte (decode→encode is the
// identity on OCP-rule blocks, and the writer lays files out as synth
// does), and the engine computes the same logits from it.
func TestQuantizeInvertsDequantize(t *testing.T) {
	for _, c := range []struct {
		name      string
		shardSize int64
	}{{"single", 0}, {"sharded", 200_000}} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			orig, bf16, back := filepath.Join(root, "orig"), filepath.Join(root, "bf16"), filepath.Join(root, "back")
			writeSynth(t, orig, c.shardSize)
			dequantize(t, orig, bf16)
			if _, err := loader.Open(bf16); err == nil || !strings.Contains(err.Error(), "dequantized") {
				t.Fatalf("the engine should refuse the BF16 variant, got %v", err)
			}
			sum, err := Quantize(context.Background(), bf16, back, QuantizeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if want := 2 * smallConfig().Layers; len(sum.Quantized) != want {
				t.Errorf("quantized %v, want %d tensors", sum.Quantized, want)
			}
			ents, err := os.ReadDir(orig)
			if err != nil {
				t.Fatal(err)
			}
			if c.shardSize > 0 && len(ents) < 5 {
				t.Fatalf("expected several shards, got %d files", len(ents))
			}
			for _, e := range ents {
				want, err := os.ReadFile(filepath.Join(orig, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(filepath.Join(back, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the original (%d vs %d bytes)", e.Name(), len(got), len(want))
				}
			}
			if a, b := logitsOf(t, orig), logitsOf(t, back); !slices.Equal(a, b) {
				t.Error("logits of the requantized checkpoint differ")
			}
		})
	}
}

func logitsOf(t *testing.T, dir string) []float32 {
	t.Helper()
	ck, err := loader.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m, err := model.New(cpu.New(), ck.Config, &ck.Weights)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Logits(context.Background(), []int32{1, 7, 300, 42, 9, 9}, 6, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestQuantizeRefusals(t *testing.T) {
	root := t.TempDir()
	orig := filepath.Join(root, "orig")
	writeSynth(t, orig, 0)
	if _, err := Quantize(context.Background(), orig, filepath.Join(root, "x"), QuantizeOptions{}); err == nil || !strings.Contains(err.Error(), "already MXFP4") {
		t.Errorf("an MXFP4 input: %v", err)
	}
	bf16 := filepath.Join(root, "bf16")
	dequantize(t, orig, bf16)
	if _, err := Quantize(context.Background(), bf16, bf16, QuantizeOptions{}); err == nil {
		t.Error("in place accepted")
	}
	if _, err := Quantize(context.Background(), bf16, orig, QuantizeOptions{}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("overwrite without force: %v", err)
	}
	if _, err := Quantize(context.Background(), bf16, orig, QuantizeOptions{Force: true}); err != nil {
		t.Errorf("overwrite with force: %v", err)
	}
	if _, err := Quantize(context.Background(), filepath.Join(root, "none"), filepath.Join(root, "y"), QuantizeOptions{}); err == nil {
		t.Error("missing input accepted")
	}
}

// Stats on a synthetic checkpoint: one entry per expert weight, counts
// consistent with the shapes.
func TestCheckpointStats(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ck")
	writeSynth(t, dir, 0)
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all, err := CheckpointStats(s, "")
	if err != nil {
		t.Fatal(err)
	}
	c := smallConfig()
	if len(all) != 2*c.Layers {
		t.Fatalf("%d tensors, want %d", len(all), 2*c.Layers)
	}
	for _, st := range all {
		rows := st.Shape[0] * st.Shape[1]
		if st.Blocks != int64(rows*st.Shape[2]) || st.Bytes != 17*st.Blocks {
			t.Errorf("%s: %d blocks, %d bytes for shape %v", st.Name, st.Blocks, st.Bytes, st.Shape)
		}
	}
	down, err := CheckpointStats(s, "*.down_proj")
	if err != nil {
		t.Fatal(err)
	}
	if len(down) != c.Layers {
		t.Errorf("glob matched %d tensors", len(down))
	}
	cmp, err := CompareTensor(s, "model.layers.0.mlp.experts.down_proj", 10)
	if err != nil {
		t.Fatal(err)
	}
	if e := cmp.Errors[MXFP4]; e.RMSE != 0 || !math.IsInf(e.SNRdB, 1) {
		t.Errorf("MXFP4 values re-encode exactly, got %+v", e)
	}
	if cmp.Values != 10*int64(c.Intermediate) {
		t.Errorf("%d values", cmp.Values)
	}
	if _, err := CompareTensor(s, "model.layers.0.self_attn.q_proj.weight", 0); err != nil {
		t.Errorf("BF16 tensor: %v", err)
	}
	if _, err := CompareTensor(s, "model.layers.0.self_attn.sinks", 0); err == nil {
		t.Error("a row of 4 values accepted")
	}
}
