package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/gptoss/gptoss/bench/serve"
	"github.com/gptoss/gptoss/tokenizer"
)

// cmdBenchServe is `gptoss bench serve`: a load generator for any
// OpenAI-compatible server, and the suites that reproduce the published
// gpt-oss measurements.
func cmdBenchServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench serve", stderr)
	baseURL := fs.String("base-url", "http://127.0.0.1:8000", "server to measure (gptoss serve, vLLM, llama.cpp, Ollama, ...)")
	model := fs.String("model", "", "model id to request (default: the first one /v1/models lists)")
	endpoint := fs.String("endpoint", serve.EndpointCompletions, "API to drive: completions (/v1/completions) or chat (/v1/chat/completions)")
	apiKey := fs.String("api-key", os.Getenv("OPENAI_API_KEY"), "bearer token (default $OPENAI_API_KEY)")
	suite := fs.String("suite", "", "run a suite: "+strings.Join(serve.SuiteNames(), ", ")+" (default: one run from the flags)")
	concurrency := fs.Int("concurrency", 1, "requests in flight at most (0: no cap; stress suite default 256)")
	requests := fs.Int("requests", 100, "requests to send (suites: per level; their defaults differ)")
	rate := fs.Float64("request-rate", math.Inf(1), "mean arrivals per second (inf: send as fast as --concurrency allows)")
	burstiness := fs.Float64("burstiness", 1, "gamma shape of the arrival gaps: 1 is Poisson, <1 burstier, >1 steadier")
	seed := fs.Uint64("seed", 0, "seed of the arrival schedule and random prompts")
	prompt := fs.String("prompt", "", "send this text as every prompt")
	dataset := fs.String("dataset", "", "prompt source: random (random tokens, --input-len long) or prompt (--prompt); default: prompt when --prompt is set, else the suite's own")
	inputLen := fs.Int("input-len", 105, "tokens per random prompt")
	outputLen := fs.Int("output-len", 256, "completion tokens to ask for (max_tokens)")
	maxTokens := fs.Int("max-tokens", 0, "max_tokens, overriding --output-len")
	ignoreEOS := fs.Bool("ignore-eos", false, "ask for exactly max_tokens tokens (ignore_eos and min_tokens; suites that measure fixed lengths turn it on)")
	temperature := fs.Float64("temperature", -1, "sampling temperature (negative: the server's default)")
	levels := fs.IntSlice("levels", nil, "batch-scaling and capacity: concurrency levels; long-context: prompt lengths in tokens")
	sloText := fs.String("slo", "ttft=2s,tpot=50ms", "per-request objective for goodput (ttft, tpot, e2e); capacity uses its ttft as the bound")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up on one request after this long (0: never)")
	warmup := fs.Int("warmup", 1, "unmeasured requests sent first")
	jsonPath := fs.String("json", "", "write the results here (suites default to gptoss-bench-SUITE.json)")
	htmlPath := fs.String("html", "", "write the HTML report here (default: next to --json; \"-\": none)")
	noProgress := fs.Bool("no-progress", false, "print no progress on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	name := *suite
	if name == "" {
		name = serve.SuiteCustom
	}
	def, err := serve.DefaultsFor(name)
	if err != nil {
		return fmt.Errorf("--suite: %w", err)
	}
	if *endpoint != serve.EndpointChat && *endpoint != serve.EndpointCompletions {
		return fmt.Errorf("--endpoint %q: want chat or completions", *endpoint)
	}
	slo, err := serve.ParseSLO(*sloText)
	if err != nil {
		return fmt.Errorf("--slo: %w", err)
	}
	if *burstiness <= 0 || math.IsNaN(*burstiness) {
		return fmt.Errorf("--burstiness must be positive, got %v", *burstiness)
	}
	if math.IsNaN(*rate) || *rate < 0 {
		return fmt.Errorf("--request-rate must be positive or inf, got %v", *rate)
	}

	// The suite's published setting, then whatever the user set.
	cfg := serve.SuiteConfig{
		Suite: name, InputLen: def.InputLen, Requests: def.Requests, Concurrency: def.Concurrency, Levels: def.Levels,
		Sampling:    serve.Sampling{MaxTokens: def.MaxTokens, IgnoreEOS: def.IgnoreEOS},
		RequestRate: *rate, Burstiness: *burstiness, SLO: slo, Seed: *seed, RequestTimeout: *timeout, Warmup: *warmup,
	}
	switch {
	case fs.Changed("max-tokens"):
		cfg.Sampling.MaxTokens = *maxTokens
	case fs.Changed("output-len"):
		cfg.Sampling.MaxTokens = *outputLen
	}
	if cfg.Sampling.MaxTokens <= 0 {
		return fmt.Errorf("--max-tokens must be at least 1, got %d", cfg.Sampling.MaxTokens)
	}
	if fs.Changed("ignore-eos") {
		cfg.Sampling.IgnoreEOS = *ignoreEOS
	}
	if *temperature >= 0 {
		cfg.Sampling.Temperature = temperature
	}
	if fs.Changed("input-len") {
		if *inputLen <= 0 {
			return fmt.Errorf("--input-len must be at least 1, got %d", *inputLen)
		}
		cfg.InputLen = *inputLen
	}
	if fs.Changed("requests") {
		if *requests <= 0 {
			return fmt.Errorf("--requests must be at least 1, got %d", *requests)
		}
		cfg.Requests = *requests
	}
	if fs.Changed("concurrency") {
		if *concurrency < 0 {
			return fmt.Errorf("--concurrency must be 0 (no cap) or more, got %d", *concurrency)
		}
		cfg.Concurrency = *concurrency
	}
	if fs.Changed("levels") {
		for _, l := range *levels {
			if l <= 0 {
				return fmt.Errorf("--levels: every level must be at least 1, got %d", l)
			}
		}
		cfg.Levels = *levels
	}
	if len(cfg.Levels) == 0 && (name == serve.SuiteBatchScaling || name == serve.SuiteCapacity || name == serve.SuiteLongContext) {
		return fmt.Errorf("--levels: suite %s needs at least one level", name)
	}

	tok, err := tokenizer.Default()
	if err != nil {
		return err
	}
	cfg.Tokenizer = tok
	if err := choosePrompts(&cfg, *dataset, *prompt, fs.Changed("input-len")); err != nil {
		return err
	}

	target := serve.Target{BaseURL: *baseURL, Model: *model, Endpoint: *endpoint, APIKey: *apiKey}
	if target.Model == "" {
		if target.Model, err = serve.DiscoverModel(ctx, target); err != nil {
			return err
		}
	}
	cfg.Target = target
	if !*noProgress {
		cfg.Progress = serve.NewProgress(stderr, writerIsTerminal(stderr))
		cfg.Log = stderr
	}

	rep, runErr := serve.RunSuite(ctx, cfg)
	if rep == nil {
		return runErr
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	out := *jsonPath
	if out == "" && *suite != "" {
		out = "gptoss-bench-" + name + ".json"
	}
	if out != "" {
		if err := rep.WriteJSON(out); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s\n", out)
	}
	page := *htmlPath
	if page == "" && out != "" {
		page = serve.HTMLPathFor(out)
	}
	if page != "" && page != "-" {
		if err := rep.WriteHTMLFile(page); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s\n", page)
	}
	return runErr
}

// choosePrompts applies --dataset and --prompt to a suite.
func choosePrompts(cfg *serve.SuiteConfig, dataset, prompt string, inputLenSet bool) error {
	if dataset == "" {
		if prompt != "" {
			dataset = "prompt"
		} else if inputLenSet && cfg.Suite == serve.SuiteInteractive {
			dataset = "random"
		}
	}
	switch dataset {
	case "":
		return nil // the suite's own prompts
	case "prompt":
		if prompt == "" {
			return fmt.Errorf("--dataset prompt needs --prompt TEXT")
		}
	case "random":
		if prompt != "" {
			return fmt.Errorf("--dataset random and --prompt exclude each other")
		}
	default:
		return fmt.Errorf("--dataset %q: want random or prompt", dataset)
	}
	if cfg.Suite == serve.SuiteScenarios || cfg.Suite == serve.SuiteLongContext {
		return fmt.Errorf("suite %s brings its own prompts: drop --prompt and --dataset", cfg.Suite)
	}
	if dataset == "prompt" {
		cfg.Prompts = []serve.Prompt{serve.TextPrompt(cfg.Tokenizer, prompt, "")}
		return nil
	}
	if cfg.InputLen <= 0 {
		cfg.InputLen = 105
	}
	if cfg.Suite == serve.SuiteInteractive {
		// The interactive suite takes its prompts from the config; the
		// others draw fresh random prompts per level.
		ps, err := serve.RandomPrompts(cfg.Tokenizer, max(cfg.Requests, 1), cfg.InputLen, cfg.Seed)
		if err != nil {
			return err
		}
		cfg.Prompts = ps
	}
	return nil
}

// writerIsTerminal reports whether w is a character device (a terminal), where
// a redrawn progress bar makes sense.
func writerIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// cmdBenchStartup is `gptoss bench startup`: how long `gptoss serve`
// takes to load a model and answer /health, and its peak memory.
func cmdBenchStartup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench startup", stderr)
	modelDir := fs.String("model", "", "checkpoint directory to serve (default: serve's synthetic tiny model)")
	layout := fs.String("layout", "", "checkpoint layout passed to serve: auto, hf or original")
	cacheDir := fs.String("cache-dir", "", "serve's --cache-dir (for the default synthetic model)")
	runs := fs.Int("runs", 3, "starts to time")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up on one start after this long")
	serveArgs := fs.StringSlice("serve-arg", nil, "extra flag for gptoss serve, repeatable (e.g. --serve-arg=--max-num-seqs=64)")
	serverBin := fs.String("server-bin", "", "gptoss binary to start (default: this one)")
	jsonPath := fs.String("json", "", "write the results here")
	verbose := fs.Bool("verbose", false, "show the server's log on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *runs <= 0 {
		return fmt.Errorf("--runs must be at least 1, got %d", *runs)
	}
	bin := *serverBin
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the gptoss binary to start: %w", err)
		}
		bin = exe
	}
	sargs := []string{"serve"}
	if *modelDir != "" {
		sargs = append(sargs, "--model", *modelDir)
	}
	if *layout != "" {
		sargs = append(sargs, "--layout", *layout)
	}
	if *cacheDir != "" {
		sargs = append(sargs, "--cache-dir", *cacheDir)
	}
	sargs = append(sargs, *serveArgs...)
	cfg := serve.StartupConfig{Command: bin, Args: sargs, Runs: *runs, Timeout: *timeout}
	if *verbose {
		cfg.Log = stderr
	}
	rep, err := serve.Startup(ctx, cfg)
	if rep != nil && len(rep.Runs) > 0 {
		rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if *jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *jsonPath, err)
		}
		fmt.Fprintf(stderr, "wrote %s\n", *jsonPath)
	}
	return nil
}
