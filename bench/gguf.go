package bench

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/gptoss/gptoss/kernels"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/mxfp4"
)

// WriteGGUF writes the checkpoint as a llama.cpp model file (GGUF v3,
// architecture "gpt-oss") so that llama-bench can time the very weights
// `gptoss bench decode` times. The layout follows llama.cpp's own
// converter: experts repacked into ggml's MXFP4 blocks with gate and up
// as separate tensors, other matrices BF16, vectors float32. The file has
// no tokenizer (llama.cpp's "none" vocabulary of vocab_size dummy
// tokens): llama-bench feeds token ids, so it runs, but the file cannot
// tokenize text.
func WriteGGUF(w io.Writer, c *loader.Checkpoint) error {
	cfg := &c.Config
	for l, s := range cfg.Sliding {
		if s != (l%2 == 0) { // llama.cpp's gpt-oss slides on even layers
			return fmt.Errorf("bench: gguf: layer %d: sliding window pattern differs from llama.cpp's (even layers)", l)
		}
	}
	// llama.cpp's gpt-oss reads neither of these from the file but fixes
	// them at gpt-oss's values; a checkpoint with others would run as a
	// different model there.
	for _, p := range []struct {
		name      string
		have, fix float64
	}{
		{"rope_scaling.beta_fast", cfg.YarnBetaFast, 32},
		{"rope_scaling.beta_slow", cfg.YarnBetaSlow, 1},
		{"swiglu_limit", cfg.SwigluLimit, 7},
		{"swiglu alpha", cfg.SwigluAlpha, 1.702},
	} {
		if p.have != p.fix {
			return fmt.Errorf("bench: gguf: %s is %g; llama.cpp's gpt-oss fixes it at %g", p.name, p.have, p.fix)
		}
	}
	tensors, err := ggufTensors(c)
	if err != nil {
		return err
	}
	const arch = "gpt-oss"
	u := func(v int) uint32 { return uint32(v) }
	meta := []ggufKV{
		{"general.architecture", arch},
		{"general.name", "gptoss " + c.Dir},
		{"general.alignment", uint32(ggufAlign)},
		{arch + ".block_count", u(cfg.NumLayers)},
		{arch + ".context_length", u(cfg.MaxPositions)},
		{arch + ".embedding_length", u(cfg.HiddenSize)},
		{arch + ".feed_forward_length", u(cfg.Intermediate)},
		{arch + ".expert_feed_forward_length", u(cfg.Intermediate)},
		{arch + ".expert_count", u(cfg.NumExperts)},
		{arch + ".expert_used_count", u(cfg.ExpertsPerToken)},
		{arch + ".attention.head_count", u(cfg.NumHeads)},
		{arch + ".attention.head_count_kv", u(cfg.NumKVHeads)},
		{arch + ".attention.key_length", u(cfg.HeadDim)},
		{arch + ".attention.value_length", u(cfg.HeadDim)},
		{arch + ".attention.sliding_window", u(cfg.SlidingWindow)},
		{arch + ".attention.layer_norm_rms_epsilon", float32(cfg.RMSNormEps)},
		{arch + ".rope.dimension_count", u(cfg.HeadDim)},
		{arch + ".rope.freq_base", float32(cfg.RopeTheta)},
		{arch + ".rope.scaling.type", "yarn"},
		{arch + ".rope.scaling.factor", float32(cfg.YarnFactor)},
		{arch + ".rope.scaling.original_context_length", u(cfg.InitialContext)},
		{arch + ".vocab_size", u(cfg.VocabSize)},
		{"tokenizer.ggml.model", "none"},
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	e := &ggufEncoder{w: bw}
	e.bytes([]byte("GGUF"))
	e.u32(3)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(meta)))
	for _, kv := range meta {
		e.str(kv.key)
		switch v := kv.value.(type) {
		case string:
			e.u32(ggufString)
			e.str(v)
		case uint32:
			e.u32(ggufUint32)
			e.u32(v)
		case float32:
			e.u32(ggufFloat32)
			e.u32(math.Float32bits(v))
		}
	}
	var offset uint64
	for _, t := range tensors {
		e.str(t.name)
		e.u32(uint32(len(t.dims)))
		for _, d := range t.dims {
			e.u64(uint64(d))
		}
		e.u32(t.typ)
		e.u64(offset)
		offset += padded(t.size())
	}
	e.pad()
	for _, t := range tensors {
		if n := t.write(e); n != t.size() && e.err == nil {
			return fmt.Errorf("bench: gguf: %s: wrote %d bytes, want %d", t.name, n, t.size())
		}
		e.pad()
	}
	if e.err == nil {
		e.err = bw.Flush()
	}
	if e.err != nil {
		return fmt.Errorf("bench: gguf: %w", e.err)
	}
	return nil
}

const (
	ggufAlign = 32

	ggufUint32  = 4 // GGUF metadata value types
	ggufFloat32 = 6
	ggufString  = 8

	ggmlF32   = 0 // ggml tensor types
	ggmlBF16  = 30
	ggmlMXFP4 = 39

	ggmlMXFP4Bytes = 1 + mxfp4.BlockBytes // ggml's block_mxfp4: the E8M0 scale, then the codes
)

type ggufKV struct {
	key   string
	value any // string, uint32 or float32
}

func padded(n uint64) uint64 { return (n + ggufAlign - 1) &^ (ggufAlign - 1) }

// ggufEncoder writes little-endian values and keeps the first error.
type ggufEncoder struct {
	w   *bufio.Writer
	n   uint64 // bytes written
	err error
}

func (e *ggufEncoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
		e.n += uint64(len(b))
	}
}

func (e *ggufEncoder) u32(v uint32) { e.bytes(binary.LittleEndian.AppendUint32(nil, v)) }
func (e *ggufEncoder) u64(v uint64) { e.bytes(binary.LittleEndian.AppendUint64(nil, v)) }

func (e *ggufEncoder) str(s string) {
	e.u64(uint64(len(s)))
	e.bytes([]byte(s))
}

func (e *ggufEncoder) pad() {
	e.bytes(make([]byte, padded(e.n)-e.n))
}

// ggufTensor is one output tensor: dims in ggml order (the row length
// first) and how to produce its bytes.
type ggufTensor struct {
	name  string
	dims  []int
	typ   uint32
	write func(e *ggufEncoder) uint64 // returns the bytes written
}

func (t ggufTensor) size() uint64 {
	n := uint64(1)
	for _, d := range t.dims {
		n *= uint64(d)
	}
	switch t.typ {
	case ggmlF32:
		return 4 * n
	case ggmlBF16:
		return 2 * n
	}
	return n / mxfp4.BlockSize * ggmlMXFP4Bytes
}

func ggufTensors(c *loader.Checkpoint) ([]ggufTensor, error) {
	w := &c.Weights
	var out []ggufTensor
	var err error
	// matrix adds a BF16 [rows, cols] tensor as stored (ggml dims cols, rows).
	matrix := func(name string, t loader.Tensor) {
		if len(t.Shape) != 2 || t.DType != loader.BF16 {
			err = fmt.Errorf("bench: gguf: %s: want a BF16 matrix, have %s %v", t.Name, t.DType, t.Shape)
			return
		}
		out = append(out, ggufTensor{name, []int{t.Shape[1], t.Shape[0]}, ggmlBF16, func(e *ggufEncoder) uint64 {
			e.bytes(t.Data)
			return uint64(len(t.Data))
		}})
	}
	// vector adds BF16 values as float32, every step-th from first (step 2
	// splits an interleaved gate/up bias), as a [len/step/groups, groups] tensor.
	vector := func(name string, t loader.Tensor, groups, first, step int) {
		n := len(t.Data) / 2 / step
		dims := []int{n}
		if groups > 1 {
			dims = []int{n / groups, groups}
		}
		out = append(out, ggufTensor{name, dims, ggmlF32, func(e *ggufEncoder) uint64 {
			all := make([]float32, len(t.Data)/2)
			kernels.DecodeBF16(all, t.Data)
			b := make([]byte, 0, 4*n)
			for i := first; i < len(all); i += step {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(all[i]))
			}
			e.bytes(b)
			return uint64(len(b))
		}})
	}
	// experts adds rows first, first+step, … of every expert in ggml's MXFP4.
	experts := func(name string, x loader.ExpertWeights, first, step int) {
		s := x.Blocks.Shape // [E, R, G, 16]
		ne, rows, groups := s[0], s[1], s[2]
		out = append(out, ggufTensor{name, []int{mxfp4.BlockSize * groups, rows / step, ne}, ggmlMXFP4, func(e *ggufEncoder) uint64 {
			row := make([]byte, groups*ggmlMXFP4Bytes)
			var n uint64
			for ex := range ne {
				for r := first; r < rows; r += step {
					i := (ex*rows + r) * groups
					for g := range groups {
						repackMXFP4(row[g*ggmlMXFP4Bytes:(g+1)*ggmlMXFP4Bytes], x.Blocks.Data[mxfp4.BlockBytes*(i+g):mxfp4.BlockBytes*(i+g+1)], x.Scales.Data[i+g])
					}
					e.bytes(row)
					n += uint64(len(row))
				}
			}
			return n
		}})
	}
	matrix("token_embd.weight", w.Embed)
	for l, lw := range w.Layers {
		b := fmt.Sprintf("blk.%d.", l)
		vector(b+"attn_norm.weight", lw.AttnNorm, 1, 0, 1)
		vector(b+"post_attention_norm.weight", lw.MLPNorm, 1, 0, 1)
		matrix(b+"attn_q.weight", lw.Q)
		vector(b+"attn_q.bias", lw.QBias, 1, 0, 1)
		matrix(b+"attn_k.weight", lw.K)
		vector(b+"attn_k.bias", lw.KBias, 1, 0, 1)
		matrix(b+"attn_v.weight", lw.V)
		vector(b+"attn_v.bias", lw.VBias, 1, 0, 1)
		matrix(b+"attn_output.weight", lw.O)
		vector(b+"attn_output.bias", lw.OBias, 1, 0, 1)
		vector(b+"attn_sinks.weight", lw.Sinks, 1, 0, 1)
		matrix(b+"ffn_gate_inp.weight", lw.Router)
		vector(b+"ffn_gate_inp.bias", lw.RouterBias, 1, 0, 1)
		ne := lw.GateUp.Blocks.Shape[0]
		// gate_up rows interleave gate (even) and up (odd).
		experts(b+"ffn_gate_exps.weight", lw.GateUp, 0, 2)
		experts(b+"ffn_up_exps.weight", lw.GateUp, 1, 2)
		experts(b+"ffn_down_exps.weight", lw.Down, 0, 1)
		vector(b+"ffn_gate_exps.bias", lw.GateUp.Bias, ne, 0, 2)
		vector(b+"ffn_up_exps.bias", lw.GateUp.Bias, ne, 1, 2)
		vector(b+"ffn_down_exps.bias", lw.Down.Bias, ne, 0, 1)
	}
	vector("output_norm.weight", w.FinalNorm, 1, 0, 1)
	matrix("output.weight", w.LMHead)
	return out, err
}

// repackMXFP4 writes one block in ggml's order: the scale byte, then byte j
// holding element j in its low nibble and element j+16 in its high one
// (checkpoints: byte j holds elements 2j and 2j+1).
func repackMXFP4(dst, codes []byte, scale byte) {
	elem := func(k int) byte { return codes[k/2] >> (4 * (k & 1)) & 0x0F }
	dst[0] = scale
	const half = mxfp4.BlockSize / 2
	for j := range half {
		dst[1+j] = elem(j) | elem(j+half)<<4
	}
}
