package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/gptoss/gptoss/backend/cuda"
	"github.com/gptoss/gptoss/bench"
	"github.com/gptoss/gptoss/kernels"
)

// cmdBench dispatches `gptoss bench membw|decode|serve|startup|gguf`.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, "usage: gptoss bench membw|decode|serve|startup|gguf [flags]\n\n"+
			"  membw    memory read bandwidth with all threads (the decode roofline)\n"+
			"  decode   prefill (pp) and decode (tg) tokens/s, bytes read per token, fraction of bandwidth\n"+
			"  serve    load generator for any OpenAI-compatible server: TTFT, TPOT, percentiles, suites\n"+
			"  startup  time until gptoss serve answers /health, and its peak RSS\n"+
			"  gguf     write the checkpoint as a llama.cpp GGUF, to time it with llama-bench")
		if len(args) == 0 {
			return fmt.Errorf("missing bench name: membw, decode, serve, startup or gguf")
		}
		return nil
	}
	switch args[0] {
	case "membw":
		return benchMemBW(args[1:], stdout, stderr)
	case "decode":
		return benchDecode(ctx, args[1:], stdout, stderr)
	case "serve":
		return cmdBenchServe(ctx, args[1:], stdout, stderr)
	case "startup":
		return cmdBenchStartup(ctx, args[1:], stdout, stderr)
	case "gguf":
		return benchGGUF(args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown bench %q: want membw, decode, serve, startup or gguf", args[0])
}

func benchISA(name string, threads int) (kernels.ISA, error) {
	if threads < 1 {
		return 0, fmt.Errorf("--threads %d: want at least 1", threads)
	}
	return kernels.ParseISA(name)
}

// deviceFlagHelp describes --device of the benchmarks: auto by default,
// as on every command that runs the model; the report names the device.
const deviceFlagHelp = "device to measure: auto (CUDA if a GPU is usable, else the CPU), cpu, cuda or cuda:N"

func benchMemBW(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench membw", stderr)
	threads := fs.Int("threads", runtime.GOMAXPROCS(0), "concurrent readers")
	size := fs.Int64("size-mib", 1024, "buffer size in MiB (far above the last-level cache)")
	rounds := fs.Int("rounds", 10, "passes over the buffer; the best is reported")
	isaName := fs.String("isa", "auto", "read loop: auto, generic, avx2, avx512")
	device := fs.String("device", "auto", deviceFlagHelp)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *size < 1 || *rounds < 1 {
		return fmt.Errorf("--size-mib %d, --rounds %d: want at least 1", *size, *rounds)
	}
	gpu, err := cuda.OpenDevice(*device, stderr)
	if err != nil {
		return err
	}
	if gpu != nil {
		defer gpu.Close()
		for _, f := range []string{"threads", "isa"} {
			if fs.Changed(f) {
				return fmt.Errorf("--%s applies to the CPU, not %s", f, gpu.Name())
			}
		}
		r, err := bench.MemBWCUDA(gpu, *size<<20, *rounds)
		if err != nil {
			return err
		}
		info := gpu.Device()
		if *asJSON {
			return json.NewEncoder(stdout).Encode(map[string]any{"membw_gbps": r.GBps, "peak_gbps": info.BandwidthGBs(),
				"device": fmt.Sprintf("%s (%s)", gpu.Name(), info.Name), "bytes": r.Bytes, "rounds": r.Rounds})
		}
		fmt.Fprintf(stdout, "membw: %.1f GB/s read on %s (%s), %.0f%% of the theoretical %.0f GB/s (%d MiB buffer, best of %d)\n",
			r.GBps, gpu.Name(), info.Name, 100*r.GBps/info.BandwidthGBs(), info.BandwidthGBs(), r.Bytes>>20, r.Rounds)
		return nil
	}
	isa, err := benchISA(*isaName, *threads)
	if err != nil {
		return err
	}
	r, err := bench.MemBW(isa, *threads, *size<<20, *rounds)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"membw_gbps": r.GBps, "threads": r.Threads, "bytes": r.Bytes, "rounds": r.Rounds, "isa": isa.String(), "device": "cpu"})
	}
	fmt.Fprintf(stdout, "membw: %.1f GB/s read (%d threads, %d MiB buffer, best of %d, %v)\n", r.GBps, r.Threads, r.Bytes>>20, r.Rounds, isa)
	return nil
}

func benchDecode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench decode", stderr)
	dir := fs.String("model", "", "checkpoint directory")
	var o bench.DecodeOptions
	fs.IntVar(&o.PromptTokens, "prompt-tokens", 512, "prefill batch size (pp); 0 skips")
	fs.IntVar(&o.GenTokens, "gen-tokens", 64, "decoded tokens (tg); 0 skips")
	fs.IntVar(&o.Repeats, "repeats", 5, "timed repetitions after one warm-up")
	fs.IntVar(&o.Depth, "depth", 0, "tokens already in the context before pp and tg")
	fs.IntVar(&o.Threads, "threads", runtime.GOMAXPROCS(0), "threads")
	isaName := fs.String("isa", "auto", "kernels: auto, generic, avx2, avx512")
	membw := fs.Int64("membw-mib", 512, "read-bandwidth buffer in MiB")
	fs.BoolVar(&o.Profile, "profile", false, "time every op kind (CPU) or kernel (CUDA, launched one by one) of the prefill and the decode steps and print ms per token")
	fs.BoolVar(&o.HugePages, "hugepages", false, "copy the weights into transparent huge pages at load (slower load, faster decode)")
	fs.BoolVar(&o.Int8Experts, "int8-experts", false, "run the MoE experts with int8 activations, prefill and decode (AVX2 or AVX-512; approximate, off: float32)")
	device := fs.String("device", "auto", deviceFlagHelp)
	graphs := fs.Bool("cuda-graphs", true, "CUDA: replay decode steps as CUDA graphs (false: launch kernel by kernel)")
	fs.BoolVar(&o.TensorCores, "tensor-cores", false, "CUDA: batch products (prefill, batched decode, MoE) on the tensor cores, BF16 weights × split-BF16 activations (approximate: 4× the default golden bound)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("--model DIR is required")
	}
	if *membw < 1 {
		return fmt.Errorf("--membw-mib %d: want at least 1", *membw)
	}
	o.MemBWBytes = *membw << 20
	gpu, err := cuda.OpenDevice(*device, stderr)
	if err != nil {
		return err
	}
	if gpu != nil {
		defer gpu.Close()
		for _, f := range []string{"threads", "isa", "hugepages", "int8-experts"} {
			if fs.Changed(f) {
				return fmt.Errorf("--%s applies to the CPU backend, not %s", f, gpu.Name())
			}
		}
		o.GPU, o.NoGraphs = gpu, !*graphs
	} else {
		for _, f := range []string{"cuda-graphs", "tensor-cores"} {
			if fs.Changed(f) {
				return fmt.Errorf("--%s applies to the CUDA backend; this run uses the CPU", f)
			}
		}
		if o.ISA, err = benchISA(*isaName, o.Threads); err != nil {
			return err
		}
		if o.Int8Experts && !o.ISA.Int8Kernel() {
			return errInt8Experts
		}
	}
	r, err := bench.Decode(ctx, *dir, o)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printReport(stdout, r)
	return nil
}

func printReport(w io.Writer, r *bench.Report) {
	gb := func(b float64) float64 { return b / 1e9 }
	if r.PeakGBps > 0 { // CUDA
		fmt.Fprintf(w, "model %s: %d layers, %d experts; %s; loaded in %.1fs\n", r.Model, r.Layers, r.Experts, r.Device, r.LoadSeconds)
		fmt.Fprintf(w, "membw: %.1f GB/s read (measured in this run by a kernel; theoretical %.0f GB/s)\n\n", r.MemBWGBps, r.PeakGBps)
	} else {
		fmt.Fprintf(w, "model %s: %d layers, %d experts; %d threads, %s; loaded in %.1fs\n", r.Model, r.Layers, r.Experts, r.Threads, r.ISA, r.LoadSeconds)
		fmt.Fprintf(w, "membw: %.1f GB/s read (measured in this run, the higher of before and after)\n\n", r.MemBWGBps)
	}
	fmt.Fprintf(w, "| test | depth | t/s |\n|---|---|---|\n")
	if r.PromptTokens > 0 {
		fmt.Fprintf(w, "| pp%d | %d | %.2f ± %.2f |\n", r.PromptTokens, r.Depth, r.Prefill.Mean, r.Prefill.Std)
	}
	if r.GenTokens > 0 {
		fmt.Fprintf(w, "| tg%d | %d | %.2f ± %.2f |\n", r.GenTokens, r.Depth, r.Decode.Mean, r.Decode.Std)
		b := r.BytesBreakdown
		fmt.Fprintf(w, "\nbytes per decoded token: %.3f GB (attention %.3f, experts %.3f, router %.4f, unembedding %.3f, kv %.4f, embedding %.6f)\n",
			gb(r.BytesPerToken), gb(b.Attention), gb(b.Experts), gb(b.Router), gb(b.Unembedding), gb(b.KV), gb(b.Embedding))
		fmt.Fprintf(w, "decode: %.1f GB/s = %.0f%% of the measured read bandwidth", r.DecodeGBps, 100*r.Fraction)
		if r.PeakGBps > 0 {
			fmt.Fprintf(w, ", %.0f%% of the theoretical", 100*r.FractionOfPeak)
		}
		fmt.Fprintln(w)
	}
	if g := r.Graphs; g != nil {
		fmt.Fprintf(w, "CUDA graphs: %v; %d sequences run: %d launched kernel by kernel, %d captured, %d replayed",
			g.Enabled, g.Flushes, g.Eager, g.Captures, g.Replays)
		if g.Disabled != "" {
			fmt.Fprintf(w, " (turned off: %s)", g.Disabled)
		}
		fmt.Fprintln(w)
	}
	printProfile(w, "prefill, per prompt token", r.PrefillProfile)
	printProfile(w, "decode, per token", r.Profile)
	fmt.Fprintf(w, "peak RSS %.2f GiB (checkpoint %.2f GiB)\n", float64(r.PeakRSS)/(1<<30), float64(r.CheckpointBytes)/(1<<30))
}

// printProfile prints an op profile of bench decode --profile as a table.
func printProfile(w io.Writer, title string, ops []bench.OpProfile) {
	if len(ops) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s:\n\n| op | ms | share | waiting | GB/s |\n|---|---|---|---|---|\n", title)
	for _, p := range ops {
		gbps := ""
		if p.GBps > 0 {
			gbps = fmt.Sprintf("%.1f", p.GBps)
		}
		fmt.Fprintf(w, "| %s | %.2f | %.1f%% | %.2f | %s |\n", p.Op, p.MsTok, 100*p.Share, p.WaitMs, gbps)
	}
}

// benchGGUF writes --model as a GGUF file for llama-bench (bench.WriteGGUF).
// It writes a temporary file next to --out and renames it, so a failed or
// interrupted run leaves no partial model behind.
func benchGGUF(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench gguf", stderr)
	var mf modelFlags
	mf.register(fs)
	if err := fs.MarkHidden("device"); err != nil { // it converts; nothing runs
		return err
	}
	out := fs.String("out", "", "GGUF file to write (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if fs.Changed("device") {
		return fmt.Errorf("--device: bench gguf only converts the checkpoint")
	}
	if *out == "" {
		return fmt.Errorf("--out FILE is required")
	}
	c, err := mf.open()
	if err != nil {
		return err
	}
	defer c.Close()
	f, err := os.CreateTemp(filepath.Dir(*out), filepath.Base(*out)+".*.tmp")
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := bench.WriteGGUF(f, c); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), *out); err != nil {
		return err
	}
	renamed = true
	st, err := os.Stat(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%.2f GiB): run it with llama-bench -m %s\n", *out, float64(st.Size())/(1<<30), *out)
	return nil
}
