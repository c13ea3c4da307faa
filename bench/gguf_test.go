package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gptoss/gptoss/kernels"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/mxfp4"
)

// gguf is a GGUF v3 file as read back by readGGUF: its metadata and its
// tensors' dims, types and bytes.
type gguf struct {
	meta    map[string]any
	tensors map[string]ggufRead
	order   []string
}

type ggufRead struct {
	dims []int
	typ  uint32
	data []byte
}

// readGGUF parses what WriteGGUF writes (string, uint32 and float32
// metadata), following the format's description rather than the writer's
// code, and checks the alignment of every tensor.
func readGGUF(b []byte) (*gguf, error) {
	pos := 0
	fail := errors.New("truncated")
	take := func(n int) ([]byte, error) {
		if n < 0 || pos+n > len(b) {
			return nil, fail
		}
		pos += n
		return b[pos-n : pos], nil
	}
	u32 := func() uint32 {
		v, err := take(4)
		if err != nil {
			return 0
		}
		return binary.LittleEndian.Uint32(v)
	}
	u64 := func() uint64 {
		v, err := take(8)
		if err != nil {
			return 0
		}
		return binary.LittleEndian.Uint64(v)
	}
	str := func() string {
		v, _ := take(int(u64()))
		return string(v)
	}
	if magic, _ := take(4); string(magic) != "GGUF" {
		return nil, fmt.Errorf("magic %q", magic)
	}
	if v := u32(); v != 3 {
		return nil, fmt.Errorf("version %d", v)
	}
	nt, nkv := u64(), u64()
	g := &gguf{meta: map[string]any{}, tensors: map[string]ggufRead{}}
	for range nkv {
		k := str()
		switch typ := u32(); typ {
		case 4:
			g.meta[k] = u32()
		case 6:
			g.meta[k] = math.Float32frombits(u32())
		case 8:
			g.meta[k] = str()
		default:
			return nil, fmt.Errorf("%s: value type %d", k, typ)
		}
	}
	type info struct {
		name   string
		dims   []int
		typ    uint32
		offset uint64
	}
	var infos []info
	for range nt {
		t := info{name: str()}
		for range u32() {
			t.dims = append(t.dims, int(u64()))
		}
		t.typ, t.offset = u32(), u64()
		infos = append(infos, t)
	}
	if pos > len(b) {
		return nil, fail
	}
	align := int(g.meta["general.alignment"].(uint32))
	data := (pos + align - 1) / align * align
	for _, t := range infos {
		n := 1
		for _, d := range t.dims {
			n *= d
		}
		size := map[uint32]int{0: 4 * n, 30: 2 * n, 39: n / 32 * 17}[t.typ]
		start := data + int(t.offset)
		if t.offset%uint64(align) != 0 || start+size > len(b) {
			return nil, fmt.Errorf("%s: offset %d, %d bytes, file %d", t.name, t.offset, size, len(b))
		}
		g.tensors[t.name] = ggufRead{t.dims, t.typ, b[start : start+size]}
		g.order = append(g.order, t.name)
	}
	return g, nil
}

// ggmlMXFP4Row decodes a row of ggml MXFP4 blocks by ggml's definition:
// element j of a block is the low nibble of byte j, element j+16 its high
// nibble, both times 2^(e-127).
func ggmlMXFP4Row(blocks []byte) []float32 {
	var out []float32
	for b := 0; b < len(blocks); b += 17 {
		blk := blocks[b : b+17]
		vals := make([]float32, 32)
		for j := range 16 {
			vals[j] = mxfp4.Value(blk[1+j]&0x0F) * mxfp4.Scale(blk[0])
			vals[j+16] = mxfp4.Value(blk[1+j]>>4) * mxfp4.Scale(blk[0])
		}
		out = append(out, vals...)
	}
	return out
}

func bf16Floats(b []byte) []float32 {
	out := make([]float32, len(b)/2)
	kernels.DecodeBF16(out, b)
	return out
}

func f32Floats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func equalFloats(t *testing.T, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %g, want %g", name, i, got[i], want[i])
		}
	}
}

// TestWriteGGUF writes both stored layouts of the shapes checkpoint and
// reads the files back: llama.cpp's metadata, every tensor's shape, and
// the values (the experts decoded by ggml's MXFP4 rule against the
// checkpoint's, gate and up split from their interleaved rows).
func TestWriteGGUF(t *testing.T) {
	for _, layout := range []string{loader.LayoutHF, loader.LayoutOriginal} {
		t.Run(layout, func(t *testing.T) {
			c, err := loader.OpenLayout("../testdata/shapes", layout)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var buf bytes.Buffer
			if err := WriteGGUF(&buf, c); err != nil {
				t.Fatal(err)
			}
			g, err := readGGUF(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			cfg := c.Config
			for k, want := range map[string]any{
				"general.architecture":                     "gpt-oss",
				"gpt-oss.block_count":                      uint32(cfg.NumLayers),
				"gpt-oss.embedding_length":                 uint32(cfg.HiddenSize),
				"gpt-oss.expert_feed_forward_length":       uint32(cfg.Intermediate),
				"gpt-oss.expert_count":                     uint32(cfg.NumExperts),
				"gpt-oss.expert_used_count":                uint32(cfg.ExpertsPerToken),
				"gpt-oss.attention.head_count":             uint32(cfg.NumHeads),
				"gpt-oss.attention.head_count_kv":          uint32(cfg.NumKVHeads),
				"gpt-oss.attention.key_length":             uint32(cfg.HeadDim),
				"gpt-oss.attention.sliding_window":         uint32(cfg.SlidingWindow),
				"gpt-oss.rope.freq_base":                   float32(cfg.RopeTheta),
				"gpt-oss.rope.scaling.factor":              float32(cfg.YarnFactor),
				"gpt-oss.attention.layer_norm_rms_epsilon": float32(cfg.RMSNormEps),
				"gpt-oss.vocab_size":                       uint32(cfg.VocabSize),
				"tokenizer.ggml.model":                     "none",
			} {
				if g.meta[k] != want {
					t.Errorf("%s = %v (%T), want %v", k, g.meta[k], g.meta[k], want)
				}
			}
			if want := 3 + 19*cfg.NumLayers; len(g.tensors) != want {
				t.Fatalf("%d tensors, want %d: %v", len(g.tensors), want, g.order)
			}
			w := c.Weights
			H, I, E, V := cfg.HiddenSize, cfg.Intermediate, cfg.NumExperts, cfg.VocabSize
			check := func(name string, dims []int, typ uint32) ggufRead {
				t.Helper()
				r, ok := g.tensors[name]
				if !ok || fmt.Sprint(r.dims) != fmt.Sprint(dims) || r.typ != typ {
					t.Fatalf("%s: %v type %d, want %v type %d", name, r.dims, r.typ, dims, typ)
				}
				return r
			}
			if r := check("token_embd.weight", []int{H, V}, 30); !bytes.Equal(r.data, w.Embed.Data) {
				t.Error("token_embd differs from the embedding")
			}
			if r := check("output.weight", []int{H, V}, 30); !bytes.Equal(r.data, w.LMHead.Data) {
				t.Error("output differs from the unembedding")
			}
			equalFloats(t, "output_norm", f32Floats(check("output_norm.weight", []int{H}, 0).data), bf16Floats(w.FinalNorm.Data))
			for l, lw := range w.Layers {
				b := fmt.Sprintf("blk.%d.", l)
				q, kv := cfg.NumHeads*cfg.HeadDim, cfg.NumKVHeads*cfg.HeadDim
				if r := check(b+"attn_k.weight", []int{H, kv}, 30); !bytes.Equal(r.data, lw.K.Data) {
					t.Errorf("%sattn_k differs", b)
				}
				if r := check(b+"attn_output.weight", []int{q, H}, 30); !bytes.Equal(r.data, lw.O.Data) {
					t.Errorf("%sattn_output differs", b)
				}
				equalFloats(t, b+"attn_q.bias", f32Floats(check(b+"attn_q.bias", []int{q}, 0).data), bf16Floats(lw.QBias.Data))
				equalFloats(t, b+"attn_sinks", f32Floats(check(b+"attn_sinks.weight", []int{cfg.NumHeads}, 0).data), bf16Floats(lw.Sinks.Data))
				equalFloats(t, b+"post_attention_norm", f32Floats(check(b+"post_attention_norm.weight", []int{H}, 0).data), bf16Floats(lw.MLPNorm.Data))
				check(b+"ffn_gate_inp.weight", []int{H, E}, 30)

				// Expert e's row r of gate (up) is row 2r (2r+1) of gate_up.
				gate := check(b+"ffn_gate_exps.weight", []int{H, I, E}, 39)
				up := check(b+"ffn_up_exps.weight", []int{H, I, E}, 39)
				down := check(b+"ffn_down_exps.weight", []int{I, H, E}, 39)
				src := func(x loader.ExpertWeights, e, r, cols int) []float32 {
					g := cols / 32
					i := (e*x.Blocks.Shape[1] + r) * g
					out := make([]float32, cols)
					mxfp4.DecodeRow(out, x.Blocks.Data[16*i:16*(i+g)], x.Scales.Data[i:i+g])
					return out
				}
				gateBias := f32Floats(check(b+"ffn_gate_exps.bias", []int{I, E}, 0).data)
				upBias := f32Floats(check(b+"ffn_up_exps.bias", []int{I, E}, 0).data)
				guBias := bf16Floats(lw.GateUp.Bias.Data)
				for e := range E {
					for r := range I {
						row := func(d ggufRead, cols int) []float32 {
							n := cols / 32 * 17
							return ggmlMXFP4Row(d.data[(e*I+r)*n : (e*I+r+1)*n])
						}
						equalFloats(t, fmt.Sprintf("%sgate[%d][%d]", b, e, r), row(gate, H), src(lw.GateUp, e, 2*r, H))
						equalFloats(t, fmt.Sprintf("%sup[%d][%d]", b, e, r), row(up, H), src(lw.GateUp, e, 2*r+1, H))
						if gateBias[e*I+r] != guBias[e*2*I+2*r] || upBias[e*I+r] != guBias[e*2*I+2*r+1] {
							t.Fatalf("%s expert %d bias %d: gate %g up %g, want %g %g", b, e, r,
								gateBias[e*I+r], upBias[e*I+r], guBias[e*2*I+2*r], guBias[e*2*I+2*r+1])
						}
					}
					for r := range H {
						n := I / 32 * 17
						equalFloats(t, fmt.Sprintf("%sdown[%d][%d]", b, e, r), ggmlMXFP4Row(down.data[(e*H+r)*n:(e*H+r+1)*n]), src(lw.Down, e, r, I))
					}
				}
				equalFloats(t, b+"ffn_down_exps.bias", f32Floats(check(b+"ffn_down_exps.bias", []int{H, E}, 0).data), bf16Floats(lw.Down.Bias.Data))
			}
		})
	}
}

// failingWriter fails once more than n bytes were written.
type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errors.New("disk full")
	}
	f.n -= len(p)
	return len(p), nil
}

func TestWriteGGUFErrors(t *testing.T) {
	c, err := loader.Open("../testdata/shapes")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, n := range []int{0, 100, 1 << 20} {
		if err := WriteGGUF(&failingWriter{n}, c); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("writer failing after %d bytes: %v", n, err)
		}
	}
	cfg := c.Config
	c.Config.SwigluLimit = 6
	if err := WriteGGUF(&bytes.Buffer{}, c); err == nil || !strings.Contains(err.Error(), "swiglu_limit") {
		t.Errorf("a SwiGLU limit llama.cpp cannot express: %v", err)
	}
	c.Config = cfg
	c.Config.YarnBetaFast = 16
	if err := WriteGGUF(&bytes.Buffer{}, c); err == nil || !strings.Contains(err.Error(), "beta_fast") {
		t.Errorf("a YaRN beta llama.cpp cannot express: %v", err)
	}
	c.Config = cfg
	c.Config.Sliding = append([]bool(nil), c.Config.Sliding...)
	c.Config.Sliding[0] = !c.Config.Sliding[0]
	if err := WriteGGUF(&bytes.Buffer{}, c); err == nil || !strings.Contains(err.Error(), "sliding") {
		t.Errorf("a layer pattern llama.cpp cannot express: %v", err)
	}
}
