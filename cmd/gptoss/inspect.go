package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/gptoss/gptoss/backend/cpu"
	"github.com/gptoss/gptoss/backend/cuda"
)

func cmdInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("inspect", stderr)
	var mf modelFlags
	mf.register(fs)
	devices := fs.Bool("devices", false, "list the compute devices found (CUDA GPUs and the CPU) and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *devices {
		return listDevices(stdout)
	}
	ck, err := mf.open()
	if err != nil {
		return err
	}
	defer ck.Close()
	c := ck.Config
	fmt.Fprintf(stdout, "checkpoint  %s (%s layout, %d files)\n", ck.Dir, ck.Layout, len(ck.Files()))
	fmt.Fprintf(stdout, "layers      %d (sliding window %d on %s)\n", c.NumLayers, c.SlidingWindow, slidingList(c.Sliding))
	fmt.Fprintf(stdout, "hidden      %d, intermediate %d per expert\n", c.HiddenSize, c.Intermediate)
	fmt.Fprintf(stdout, "attention   %d query heads, %d kv heads, head_dim %d\n", c.NumHeads, c.NumKVHeads, c.HeadDim)
	fmt.Fprintf(stdout, "experts     %d, %d per token\n", c.NumExperts, c.ExpertsPerToken)
	fmt.Fprintf(stdout, "vocab       %d\n", c.VocabSize)
	fmt.Fprintf(stdout, "rope        theta %g, YaRN factor %g (beta_fast %g, beta_slow %g, original context %d), max positions %d\n",
		c.RopeTheta, c.YarnFactor, c.YarnBetaFast, c.YarnBetaSlow, c.InitialContext, c.MaxPositions)
	fmt.Fprintf(stdout, "norm eps    %g; swiglu alpha %g, limit %g\n", c.RMSNormEps, c.SwigluAlpha, c.SwigluLimit)
	fmt.Fprintf(stdout, "stop ids    %v, pad %d\n\n", c.EOSTokenIDs, c.PadTokenID)

	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDTYPE\tSHAPE\tBYTES\tFILE")
	var total int64
	for _, t := range ck.Tensors() {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%s\n", t.Name, t.DType, t.Shape, t.Bytes(), t.File)
		total += t.Bytes()
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\ntotal tensor bytes           %d (%s)\n", total, humanBytes(total))
	b := ck.BytesPerDecodedToken()
	fmt.Fprintf(stdout, "bytes read per decoded token %d (%s; batch 1, weights only, KV cache excluded)\n", b, humanBytes(b))
	return nil
}

// listDevices prints the GPUs the CUDA driver reports, or why there are
// none, and the CPU backend's configuration.
func listDevices(w io.Writer) error {
	infos, err := cuda.Devices()
	if err != nil {
		fmt.Fprintf(w, "cuda   none: %v\n", err)
	}
	for _, d := range infos {
		fmt.Fprintf(w, "%s\n", d)
	}
	c := cpu.New()
	fmt.Fprintf(w, "cpu    %d threads, %v kernels\n", c.Threads(), c.ISA())
	return nil
}

func slidingList(s []bool) string {
	var ls []string
	for l, v := range s {
		if v {
			ls = append(ls, fmt.Sprint(l))
		}
	}
	if len(ls) == 0 {
		return "no layers"
	}
	return "layers " + strings.Join(ls, ",")
}

func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.3f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
