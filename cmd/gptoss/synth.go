package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gptoss/gptoss/synth"
)

func cmdSynth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("synth", stderr)
	out := fs.String("out", "", "output directory (required)")
	preset := fs.String("preset", "tiny", "geometry: "+strings.Join(synth.PresetNames(), ", ")+"; the flags below override it")
	seed := fs.Uint64("seed", 1, "random seed; the same seed gives byte-identical files")
	original := fs.Bool("original", false, "also write original/ (OpenAI layout: fused qkv, block.N names)")
	force := fs.Bool("force", false, "replace a checkpoint already in --out")
	shardSize := fs.String("shard-size", "", "max tensor bytes per safetensors file, e.g. 2GB, 512MiB; 0 = one file (default 5GB, which reproduces the released shard counts)")
	origShardSize := fs.String("original-shard-size", "", "the same for original/ (default: one file, 10GB for 120b)")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	workers := fs.Int("workers", 0, "tensors generated in parallel; 0 = one per CPU (GOMAXPROCS); the output is the same for any count")
	dims := []struct {
		name, help string
		dst        func(*synth.Config) *int
	}{
		{"layers", "num_hidden_layers", func(c *synth.Config) *int { return &c.Layers }},
		{"hidden", "hidden_size (multiple of 32)", func(c *synth.Config) *int { return &c.Hidden }},
		{"experts", "num_local_experts", func(c *synth.Config) *int { return &c.Experts }},
		{"experts-per-token", "num_experts_per_tok", func(c *synth.Config) *int { return &c.ExpertsPerToken }},
		{"intermediate", "intermediate_size per expert (multiple of 32)", func(c *synth.Config) *int { return &c.Intermediate }},
		{"heads", "num_attention_heads", func(c *synth.Config) *int { return &c.Heads }},
		{"kv-heads", "num_key_value_heads", func(c *synth.Config) *int { return &c.KVHeads }},
		{"head-dim", "head_dim (even)", func(c *synth.Config) *int { return &c.HeadDim }},
		{"vocab", "vocab_size (special ids are clamped into a small vocabulary)", func(c *synth.Config) *int { return &c.Vocab }},
		{"window", "sliding_window", func(c *synth.Config) *int { return &c.Window }},
	}
	vals := make([]*int, len(dims))
	for i, d := range dims {
		vals[i] = fs.Int(d.name, 0, d.help+" (default from --preset)")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	cfg, err := synth.Preset(*preset)
	if err != nil {
		return err
	}
	label := *preset
	for i, d := range dims {
		if fs.Changed(d.name) {
			*d.dst(&cfg) = *vals[i]
			label = *preset + " with overrides"
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	hfShard, origShard := synth.DefaultShardSize(*preset)
	if *shardSize != "" {
		if hfShard, err = synth.ParseSize(*shardSize); err != nil {
			return err
		}
	}
	if *origShardSize != "" {
		if origShard, err = synth.ParseSize(*origShardSize); err != nil {
			return err
		}
	}

	opts := synth.Options{
		Seed: *seed, Original: *original, Force: *force,
		ShardSize: hfShard, OriginalShardSize: origShard, Workers: *workers,
	}
	start := time.Now()
	if !*quiet {
		// At most once a second: 20b takes minutes, tiny a blink.
		var last time.Time
		opts.Progress = func(done, total int64) {
			if now := time.Now(); now.Sub(last) >= time.Second || (done == total && !last.IsZero()) {
				last = now
				pct := done * 100 / max(total, 1)
				fmt.Fprintf(stderr, "\rsynth: %3d%% of %s tensor data, %s", pct, synth.FormatSize(total),
					time.Since(start).Round(time.Second))
				if done == total {
					fmt.Fprintln(stderr)
				}
			}
		}
	}
	fmt.Fprintf(stdout, "synth: %s (layers %d, hidden %d, experts %d top-%d, intermediate %d, heads %d/%d × %d, vocab %d, window %d), seed %d\n",
		label, cfg.Layers, cfg.Hidden, cfg.Experts, cfg.ExpertsPerToken, cfg.Intermediate,
		cfg.Heads, cfg.KVHeads, cfg.HeadDim, cfg.Vocab, cfg.Window, *seed)
	files, err := synth.Write(ctx, *out, cfg, opts)
	if err != nil {
		return err
	}
	var total int64
	for _, f := range files {
		fmt.Fprintf(stdout, "  %-40s %12d  %s\n", f.Path, f.Size, synth.FormatSize(f.Size))
		total += f.Size
	}
	fmt.Fprintf(stdout, "wrote %d files, %s, to %s in %s\n", len(files), synth.FormatSize(total), *out,
		time.Since(start).Round(100*time.Millisecond))
	return nil
}
