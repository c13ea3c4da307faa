// Command gptoss is the gpt-oss inference engine: one binary, subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/spf13/pflag"
)

// command is one subcommand. run gets the arguments after the subcommand
// name; it reports user errors as returned errors, never by exiting.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		// one line per subcommand; keep sorted
		"attn":     {summary: "where attention goes (sink, window, beyond) per layer and head; sink and window ablations", run: cmdAttn},
		"bench":    {summary: "measure memory bandwidth, prefill and decode throughput (llama-bench style)", run: cmdBench},
		"chat":     {summary: "chat with a model in the terminal (harmony format, reasoning dimmed)", run: cmdChat},
		"inspect":  {summary: "print a checkpoint's config, tensor table and bytes read per token", run: cmdInspect},
		"logits":   {summary: "write the logits of a token sequence as raw float32", run: cmdLogits},
		"mxfp4":    {summary: "MXFP4 research: stats, compare with INT4, quantize a BF16 checkpoint", run: cmdMXFP4},
		"serve":    {summary: "serve the OpenAI-compatible HTTP API with continuous batching", run: cmdServe},
		"synth":    {summary: "write a synthetic gpt-oss checkpoint (random weights, real layout)", run: cmdSynth},
		"tokenize": {summary: "encode text to o200k_harmony token ids, or decode ids (--decode)", run: cmdTokenize},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout, cmds)
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "gptoss: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "gptoss %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: gptoss <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nrun 'gptoss <command> --help' for a command's flags")
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("gptoss "+name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
