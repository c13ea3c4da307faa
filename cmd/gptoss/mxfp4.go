package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/mxfp4"
	"github.com/gptoss/gptoss/mxfp4/analysis"
)

// cmdMXFP4 dispatches the MXFP4 research tools.
func cmdMXFP4(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"stats":    mxfp4Stats,
		"compare":  mxfp4Compare,
		"quantize": mxfp4Quantize,
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, `usage: gptoss mxfp4 <stats|compare|quantize> [flags]

  stats     per MXFP4 tensor: histograms of scale exponents and codes, saturated blocks, bytes
  compare   quantisation error of MXFP4 vs INT4 (absmax per 32-block, absmax per row)
  quantize  turn a dequantized BF16 checkpoint into the official MXFP4 layout

run 'gptoss mxfp4 <subcommand> --help' for its flags
`)
		return nil
	}
	sub, ok := subs[args[0]]
	if !ok {
		return fmt.Errorf("unknown subcommand %q: want stats, compare or quantize", args[0])
	}
	return sub(ctx, args[1:], stdout, stderr)
}

// openStore opens the safetensors of --model without checking them against
// a config (dequantized checkpoints included).
func openStore(mf *modelFlags) (*analysis.Store, error) {
	if mf.dir == "" {
		return nil, fmt.Errorf("--model DIR is required")
	}
	switch mf.layout {
	case "auto", "", loader.LayoutHF:
		return analysis.OpenStore(mf.dir)
	case loader.LayoutOriginal:
		if filepath.Base(filepath.Clean(mf.dir)) == "original" {
			return analysis.OpenStore(mf.dir)
		}
		return analysis.OpenStore(filepath.Join(mf.dir, "original"))
	}
	return nil, fmt.Errorf("--layout %q: want auto, hf or original", mf.layout)
}

func mxfp4Stats(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("mxfp4 stats", stderr)
	var mf modelFlags
	mf.register(fs)
	pattern := fs.String("tensor", "", "only tensors whose base name matches: a glob (model.layers.*.mlp.experts.down_proj) or a substring")
	asJSON := fs.Bool("json", false, "write JSON instead of text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := openStore(&mf)
	if err != nil {
		return err
	}
	defer s.Close()
	stats, err := analysis.CheckpointStats(s, *pattern)
	if err != nil {
		return err
	}
	if len(stats) == 0 {
		return fmt.Errorf("%s: no MXFP4 tensor matches %q", s.Dir, *pattern)
	}
	total := &analysis.Stats{Name: "total"}
	for _, st := range stats {
		total.Merge(st)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Tensors []*analysis.Stats `json:"tensors"`
			Total   *analysis.Stats   `json:"total"`
		}{stats, total})
	}
	for _, st := range stats {
		printStats(stdout, st)
	}
	if len(stats) > 1 {
		printStats(stdout, total)
	}
	return nil
}

func printStats(w io.Writer, s *analysis.Stats) {
	shape := ""
	if s.Shape != nil {
		shape = fmt.Sprintf("  %v", s.Shape)
	}
	fmt.Fprintf(w, "%s%s: %d blocks, %d bytes, saturated (largest |code| = 6) %.2f%%\n",
		s.Name, shape, s.Blocks, s.Bytes, 100*s.SaturatedShare())
	var b strings.Builder
	for _, e := range s.ScaleHistogram() {
		fmt.Fprintf(&b, " 2^%d:%.2f%%", e.Exponent, 100*float64(e.Blocks)/float64(s.Blocks))
	}
	fmt.Fprintf(w, "  scale exponents%s\n", b.String())
	b.Reset()
	for c, n := range s.Codes {
		v := mxfp4.Value(uint8(c))
		sign := "+"
		if math.Signbit(float64(v)) {
			sign = "-"
		}
		fmt.Fprintf(&b, " %s%g:%.2f%%", sign, math.Abs(float64(v)), 100*float64(n)/float64(32*s.Blocks))
	}
	fmt.Fprintf(w, "  codes          %s\n", b.String())
}

func mxfp4Compare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("mxfp4 compare", stderr)
	var mf modelFlags
	mf.register(fs)
	tensor := fs.String("tensor", "", "with --model: an MXFP4 tensor's base name (…experts.down_proj) or a BF16/F32 tensor (rows along its last dimension)")
	synthetic := fs.String("synthetic", "", "generated values instead of a checkpoint: "+strings.Join(analysis.SyntheticKinds(), ", ")+", or example (the explanatory example)")
	seed := fs.Uint64("seed", 1, "seed of --synthetic")
	rows := fs.Int("rows", 0, "rows to compare: with --model the first N (0: all); with --synthetic the row count (0: 256)")
	cols := fs.Int("cols", 2880, "row length of --synthetic (a multiple of 32)")
	asJSON := fs.Bool("json", false, "write JSON instead of text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rows < 0 {
		return fmt.Errorf("--rows %d is negative", *rows)
	}
	var (
		cmp    analysis.Comparison
		source string
		err    error
	)
	switch {
	case (*synthetic == "") == (mf.dir == ""):
		return fmt.Errorf("give either --model DIR --tensor NAME or --synthetic KIND")
	case *synthetic == "example":
		source = "the explanatory example [1.0 0.9 1.1 0.95 1.05 1.0 0.92 | 100.0], two zero-padded 32-blocks"
		cmp, err = analysis.Compare(analysis.ExplanatoryRow(), 2*mxfp4.BlockSize)
	case *synthetic != "":
		n := *rows
		if n == 0 {
			n = 256
		}
		source = fmt.Sprintf("synthetic %s, seed %d, %d×%d", *synthetic, *seed, n, *cols)
		var v []float32
		if v, err = analysis.Synthetic(*synthetic, *seed, n, *cols); err == nil {
			cmp, err = analysis.Compare(v, *cols)
		}
	default:
		if *tensor == "" {
			return fmt.Errorf("--tensor NAME is required with --model")
		}
		s, oerr := openStore(&mf)
		if oerr != nil {
			return oerr
		}
		defer s.Close()
		source = *tensor
		cmp, err = analysis.CompareTensor(s, *tensor, *rows)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Source string `json:"source"`
			analysis.Comparison
		}{source, cmp})
	}
	fmt.Fprintf(stdout, "%s: %d values in rows of %d\n", source, cmp.Values, cmp.RowLen)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHEME\tRMSE\tMAX ERROR\tFLUSHED TO 0\tSNR dB")
	for _, sc := range analysis.Schemes() {
		e := cmp.Errors[sc]
		fmt.Fprintf(tw, "%s\t%.4g\t%.4g\t%.2f%%\t%.2f\n", sc, e.RMSE, e.Max, 100*e.Flushed, e.SNRdB)
	}
	return tw.Flush()
}

func mxfp4Quantize(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("mxfp4 quantize", stderr)
	in := fs.String("in", "", "dequantized BF16 checkpoint (HF layout, mlp.experts.gate_up_proj / down_proj)")
	out := fs.String("out", "", "output directory for the MXFP4 checkpoint")
	force := fs.Bool("force", false, "replace a checkpoint already in --out")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *out == "" {
		return fmt.Errorf("--in DIR and --out DIR are required")
	}
	o := analysis.QuantizeOptions{Force: *force}
	if !*quiet {
		o.Progress = func(name string) { fmt.Fprintf(stderr, "wrote %s\n", name) }
	}
	sum, err := analysis.Quantize(ctx, *in, *out, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "quantized %d expert weights to MXFP4, copied %d tensors: %d → %d tensor bytes\n",
		len(sum.Quantized), sum.Copied, sum.InBytes, sum.OutBytes)
	fmt.Fprintf(stdout, "wrote %s: %s\n", *out, strings.Join(sum.Files, ", "))
	if len(sum.Skipped) > 0 {
		fmt.Fprintf(stdout, "not carried over: %s\n", strings.Join(sum.Skipped, ", "))
	}
	return nil
}
