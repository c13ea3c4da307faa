package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/gptoss/gptoss/attention/introspect"
	"github.com/gptoss/gptoss/model"
	"github.com/gptoss/gptoss/tokenizer"
)

func cmdAttn(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("attn", stderr)
	var mf modelFlags
	mf.register(fs)
	prompt := fs.String("prompt", "", "text to run (encoded with the checkpoint's tokenizer, no chat template)")
	tokenList := fs.String("tokens", "", "token ids to run instead of --prompt, e.g. 1,2,3")
	layer := fs.Int("layer", -1, "report only this layer's heads (ablations still change every layer)")
	noSinks := fs.Bool("no-sinks", false, "ablation: sink logits → −∞")
	window := fs.Int("window", 0, "ablation: sliding window width N on the sliding layers")
	asJSON := fs.Bool("json", false, "write JSON instead of text")
	svg := fs.String("svg", "", "write a heatmap of the sink mass (layer × head) to this SVG file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*prompt == "") == (*tokenList == "") {
		return fmt.Errorf("give --prompt TEXT or --tokens IDS")
	}
	if *window < 0 {
		return fmt.Errorf("--window %d: want a positive width", *window)
	}
	// Without an ablation flag the sinks are removed, the one ablation
	// that always does something; with both flags each runs alone and
	// together.
	var ablations []model.AttentionChange
	switch {
	case *noSinks && *window > 0:
		ablations = []model.AttentionChange{{NoSinks: true}, {Window: *window}, {NoSinks: true, Window: *window}}
	case *window > 0:
		ablations = []model.AttentionChange{{Window: *window}}
	default:
		ablations = []model.AttentionChange{{NoSinks: true}}
	}
	m, ck, err := mf.load()
	if err != nil {
		return err
	}
	defer ck.Close()
	if *layer >= m.Config.NumLayers {
		return fmt.Errorf("--layer %d: the model has layers 0…%d", *layer, m.Config.NumLayers-1)
	}
	tokens, err := attnTokens(mf.dir, *prompt, *tokenList)
	if err != nil {
		return err
	}
	for _, id := range tokens {
		if int(id) >= m.Config.VocabSize {
			return fmt.Errorf("token %d is outside the model's vocabulary of %d", id, m.Config.VocabSize)
		}
	}
	sinks, err := introspect.Sinks(&ck.Weights)
	if err != nil {
		return err
	}
	r, err := introspect.Run(ctx, m, sinks, tokens, *layer, ablations)
	if err != nil {
		return err
	}
	if *svg != "" {
		f, err := os.Create(*svg)
		if err != nil {
			return err
		}
		title := fmt.Sprintf("sink attention mass, %d tokens", r.Tokens)
		if err := introspect.WriteSVG(f, r.Layers, title); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", *svg, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("writing %s: %w", *svg, err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(stdout, "%d tokens; attention mass per head averaged over the query positions\n", r.Tokens)
	fmt.Fprintf(stdout, "window = the %d most recent keys, the query's own included; beyond = older keys (full layers only)\n\n", r.Window)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tKIND\tHEAD\tSINK\tWINDOW\tBEYOND")
	for _, l := range r.Layers {
		kind := "full"
		if l.Sliding {
			kind = "sliding"
		}
		for h, hm := range l.Heads {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%.4f\t%.4f\t%.4f\n", l.Layer, kind, h, hm.Sink, hm.Window, hm.Beyond)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nperplexity of the text, unmodified: %.4g\n\n", r.Perplexity)
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ABLATION\tMEAN KL (nats)\tMAX KL\tARGMAX CHANGED\tPERPLEXITY")
	for _, a := range r.Ablations {
		fmt.Fprintf(tw, "%s\t%.4g\t%.4g\t%.1f%%\t%.4g\n", a.Name, a.MeanKL, a.MaxKL, 100*a.ArgmaxChanged, a.Perplexity)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if *svg != "" {
		fmt.Fprintf(stdout, "\nwrote %s\n", *svg)
	}
	return nil
}

// attnTokens encodes the prompt with the checkpoint's tokenizer, or parses
// the token list.
func attnTokens(dir, prompt, list string) ([]int32, error) {
	if list != "" {
		return parseTokens(list)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, err
	}
	ids := tok.Encode(prompt)
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out, nil
}
