package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/mxfp4"
)

// dequantizedExpert matches the dequantized expert weights of the HF BF16
// variant (spec §3.1): gate_up_proj [E, H, 2I] and down_proj [E, I, H],
// in × out. Their biases (…_proj_bias) do not match and are copied.
var dequantizedExpert = regexp.MustCompile(`^model\.layers\.\d+\.mlp\.experts\.(gate_up_proj|down_proj)$`)

// QuantizeOptions control Quantize.
type QuantizeOptions struct {
	// Force replaces a checkpoint already in the output directory.
	Force bool
	// Progress, if set, is called after each tensor is written.
	Progress func(name string)
}

// QuantizeSummary reports what Quantize did.
type QuantizeSummary struct {
	Quantized []string // base names of the expert weights turned into MXFP4
	Copied    int      // tensors copied byte for byte
	Files     []string // files written, relative to the output directory
	Skipped   []string // input entries not carried over (subdirectories)
	InBytes   int64    // tensor bytes read
	OutBytes  int64    // tensor bytes written
}

// Quantize turns the dequantized BF16 gpt-oss checkpoint in in (HF layout,
// experts as mlp.experts.gate_up_proj / down_proj, in × out) into the
// official MXFP4 layout in out: each expert weight becomes
// …_proj_blocks [E, out, in/32, 16] U8 and …_proj_scales [E, out, in/32]
// U8 (transposed to out × in, then mxfp4.EncodeRow, the OCP rule); every
// other tensor, biases included, is copied byte for byte. Shards keep their
// names and the tensors they hold (each file's tensors sorted by name, as
// synth writes them), the index is rewritten, config.json gets the
// released quantization_config, and other top-level files are copied.
//
// Memory stays at one expert matrix in float32 plus one expert weight's
// scales (1/16 of its blocks): experts are transposed and encoded one at a
// time and streamed out. Files are written under a temporary directory in
// out and moved into place at the end, config.json last.
//
// Encoding the decode of an OCP-rule MXFP4 checkpoint gives back its exact
// bytes, so Quantize inverts the dequantization of an official checkpoint.
func Quantize(ctx context.Context, in, out string, o QuantizeOptions) (sum QuantizeSummary, err error) {
	if filepath.Clean(in) == filepath.Clean(out) {
		return sum, fmt.Errorf("analysis: quantize: input and output are both %s", in)
	}
	cfgPath := filepath.Join(in, "config.json")
	cfgBytes, err := os.ReadFile(cfgPath)
	if err != nil {
		return sum, fmt.Errorf("analysis: quantize: %w", err)
	}
	cfg, err := quantizedConfig(cfgBytes)
	if err != nil {
		return sum, fmt.Errorf("analysis: quantize: %s: %w", cfgPath, err)
	}
	if !hasWeights(in) {
		return sum, fmt.Errorf("analysis: quantize: %s holds no %s or %s", in, loader.IndexFile, loader.SingleFile)
	}
	s, err := OpenStore(in)
	if err != nil {
		return sum, err
	}
	defer s.Close()

	// Plan every output file before writing anything.
	type shardPlan struct {
		path    string
		entries []entry
	}
	var plans []shardPlan
	weightMap := map[string]string{}
	var total int64
	indexed := false
	scalesOf := map[string][]byte{} // expert base name → scales, produced with its blocks
	for _, sh := range s.Shards() {
		indexed = indexed || sh.Indexed
		var es []entry
		for _, name := range sh.Names {
			t, err := s.Tensor(name)
			if err != nil {
				return sum, err
			}
			sum.InBytes += int64(len(t.Data))
			if dequantizedExpert.MatchString(name) {
				blocks, scales, err := expertEntries(ctx, t, scalesOf)
				if err != nil {
					return sum, err
				}
				es = append(es, blocks, scales)
				sum.Quantized = append(sum.Quantized, name)
				continue
			}
			es = append(es, entry{Name: name, DType: t.DType, Shape: t.Shape, write: copyBytes(t.Data)})
			sum.Copied++
		}
		slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.Name, b.Name) })
		for _, e := range es {
			weightMap[e.Name] = sh.Path
			total += e.Size()
		}
		plans = append(plans, shardPlan{sh.Path, es})
	}
	if len(sum.Quantized) == 0 {
		return sum, fmt.Errorf("analysis: quantize: %s has no dequantized expert weights (model.layers.N.mlp.experts.gate_up_proj / down_proj); is it already MXFP4?", in)
	}
	sum.OutBytes = total

	if err := os.MkdirAll(out, 0o755); err != nil {
		return sum, fmt.Errorf("analysis: quantize: %w", err)
	}
	if isFile(filepath.Join(out, "config.json")) && !o.Force {
		return sum, fmt.Errorf("analysis: quantize: %s already holds a checkpoint; use --force to replace it", out)
	}
	tmp, err := os.MkdirTemp(out, ".quantize-tmp-")
	if err != nil {
		return sum, fmt.Errorf("analysis: quantize: %w", err)
	}
	defer os.RemoveAll(tmp) // empty after the renames; holds the partial files on error

	var files []string
	for _, p := range plans {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		dst := filepath.Join(tmp, p.path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return sum, fmt.Errorf("analysis: quantize: %w", err)
		}
		if err := writeSafetensors(dst, p.entries); err != nil {
			return sum, err
		}
		if o.Progress != nil {
			o.Progress(p.path)
		}
		files = append(files, p.path)
	}
	if indexed {
		var idx struct {
			Metadata struct {
				TotalSize int64 `json:"total_size"`
			} `json:"metadata"`
			WeightMap map[string]string `json:"weight_map"`
		}
		idx.Metadata.TotalSize, idx.WeightMap = total, weightMap
		b, err := marshalFile(idx)
		if err != nil {
			return sum, fmt.Errorf("analysis: quantize: index: %w", err)
		}
		if err := os.WriteFile(filepath.Join(tmp, loader.IndexFile), b, 0o644); err != nil {
			return sum, fmt.Errorf("analysis: quantize: %w", err)
		}
		files = append(files, loader.IndexFile)
	}
	others, skipped, err := otherFiles(in)
	if err != nil {
		return sum, err
	}
	sum.Skipped = skipped
	for _, name := range others {
		if err := copyFile(filepath.Join(tmp, name), filepath.Join(in, name)); err != nil {
			return sum, err
		}
		files = append(files, name)
	}
	if err := os.WriteFile(filepath.Join(tmp, "config.json"), cfg, 0o644); err != nil {
		return sum, fmt.Errorf("analysis: quantize: %w", err)
	}
	files = append(files, "config.json") // last: it marks the directory as a checkpoint

	// Publish. A stale index from an older checkpoint would point at the
	// wrong shards, so it goes when this one has none.
	if !indexed {
		if err := os.Remove(filepath.Join(out, loader.IndexFile)); err != nil && !os.IsNotExist(err) {
			return sum, fmt.Errorf("analysis: quantize: %w", err)
		}
	}
	for _, f := range files {
		dst := filepath.Join(out, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return sum, fmt.Errorf("analysis: quantize: %w", err)
		}
		if err := os.Rename(filepath.Join(tmp, f), dst); err != nil {
			return sum, fmt.Errorf("analysis: quantize: %w", err)
		}
	}
	sum.Files = files
	return sum, nil
}

// expertEntries plans the blocks and scales tensors of one dequantized
// expert weight t [E, in, out]. The blocks producer encodes expert by
// expert and leaves the scales in scalesOf for the scales producer (which
// sorts right after it); if the scales are asked for first they are
// computed on their own.
func expertEntries(ctx context.Context, t loader.Tensor, scalesOf map[string][]byte) (blocks, scales entry, err error) {
	if len(t.Shape) != 3 {
		return blocks, scales, fmt.Errorf("analysis: quantize: %s: shape %v, want [experts, in, out]", t.Name, t.Shape)
	}
	if t.DType != loader.BF16 && t.DType != loader.F32 {
		return blocks, scales, fmt.Errorf("analysis: quantize: %s: dtype %s, want BF16 or F32", t.Name, t.DType)
	}
	E, in, out := t.Shape[0], t.Shape[1], t.Shape[2]
	if in%mxfp4.BlockSize != 0 {
		return blocks, scales, fmt.Errorf("analysis: quantize: %s: input dimension %d is not a multiple of %d", t.Name, in, mxfp4.BlockSize)
	}
	G := in / mxfp4.BlockSize
	encode := func(w io.Writer) ([]byte, error) {
		sc := make([]byte, E*out*G)
		wt := make([]float32, out*in) // one expert, out × in
		blk := make([]byte, out*G*mxfp4.BlockBytes)
		es := t.DType.Size()
		for e := range E {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			src := t.Data[e*in*out*es : (e+1)*in*out*es]
			if err := transpose(wt, src, t.DType, in, out); err != nil {
				return nil, fmt.Errorf("expert %d: %w", e, err)
			}
			for r := range out {
				mxfp4.EncodeRow(blk[r*G*mxfp4.BlockBytes:(r+1)*G*mxfp4.BlockBytes], sc[(e*out+r)*G:(e*out+r+1)*G], wt[r*in:(r+1)*in])
			}
			if _, err := w.Write(blk); err != nil {
				return nil, err
			}
		}
		return sc, nil
	}
	blocks = entry{Name: t.Name + "_blocks", DType: loader.U8, Shape: []int{E, out, G, mxfp4.BlockBytes},
		write: func(w io.Writer) error {
			sc, err := encode(w)
			scalesOf[t.Name] = sc
			return err
		}}
	scales = entry{Name: t.Name + "_scales", DType: loader.U8, Shape: []int{E, out, G},
		write: func(w io.Writer) error {
			sc, ok := scalesOf[t.Name]
			if !ok {
				var err error
				if sc, err = encode(io.Discard); err != nil {
					return err
				}
			}
			delete(scalesOf, t.Name)
			_, err := w.Write(sc)
			return err
		}}
	return blocks, scales, nil
}

// transpose widens src ([in, out] row-major, BF16 or F32) into dst
// [out, in], in 32×32 tiles so both sides stay in cache.
func transpose(dst []float32, src []byte, dt loader.DType, in, out int) error {
	const tile = 32
	var row [tile]float32
	es := dt.Size()
	for i0 := 0; i0 < in; i0 += tile {
		for o0 := 0; o0 < out; o0 += tile {
			for i := i0; i < min(i0+tile, in); i++ {
				n := min(o0+tile, out) - o0
				if err := toFloats(row[:n], src[(i*out+o0)*es:(i*out+o0+n)*es], dt); err != nil {
					return err
				}
				for j := range n {
					dst[(o0+j)*in+i] = row[j]
				}
			}
		}
	}
	return nil
}

// quantizedConfig returns config.json with the released
// quantization_config set (replacing any other). Keys come out sorted and
// two-space indented, the layout of the released file.
func quantizedConfig(b []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	q, err := json.Marshal(map[string]any{
		"modules_to_not_convert": []string{
			"model.layers.*.self_attn",
			"model.layers.*.mlp.router",
			"model.embed_tokens",
			"lm_head",
		},
		"quant_method": "mxfp4",
	})
	if err != nil {
		return nil, err
	}
	m["quantization_config"] = q
	return marshalFile(m)
}

// marshalFile renders a JSON file as the released repos (and synth) do.
func marshalFile(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// otherFiles lists the top-level regular files of dir that Quantize copies
// unchanged (everything but the weights, the index and config.json), and
// the entries it skips (subdirectories such as original/, which are
// already MXFP4 in released repos).
func otherFiles(dir string) (copied, skipped []string, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("analysis: quantize: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case e.IsDir():
			skipped = append(skipped, name+"/")
		case !e.Type().IsRegular(),
			name == "config.json", name == loader.IndexFile, strings.HasSuffix(name, ".safetensors"):
		default:
			copied = append(copied, name)
		}
	}
	return copied, skipped, nil
}

func copyFile(dst, src string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("analysis: quantize: %w", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("analysis: quantize: %w", err)
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("analysis: quantize: %s: %w", dst, cerr)
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("analysis: quantize: copying %s: %w", src, err)
	}
	return nil
}
