package serve

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gptoss/gptoss/tokenizer"
)

// Suite names.
const (
	SuiteInteractive  = "interactive"
	SuiteBatchScaling = "batch-scaling"
	SuiteLongContext  = "long-context"
	SuiteScenarios    = "scenarios"
	SuiteCapacity     = "capacity"
	SuiteStress       = "stress"
	// SuiteCustom is a single run described by flags alone.
	SuiteCustom = "custom"
)

// SuiteNames lists the suites in the order the help shows them.
func SuiteNames() []string {
	return []string{SuiteInteractive, SuiteBatchScaling, SuiteLongContext, SuiteScenarios, SuiteCapacity, SuiteStress}
}

// SuiteDefaults are the published setting of each suite; every field can
// be overridden from the command line.
type SuiteDefaults struct {
	MaxTokens   int
	IgnoreEOS   bool
	InputLen    int   // random prompts' length in tokens (0: fixed prompts)
	Requests    int   // per level or per run
	Concurrency int   // stress
	Levels      []int // concurrency levels (batch-scaling, capacity) or context lengths (long-context)
}

// DefaultsFor returns a suite's defaults.
func DefaultsFor(suite string) (SuiteDefaults, error) {
	switch suite {
	case SuiteInteractive:
		// ≈105-token prompt, 256 completion tokens, batch 1.
		return SuiteDefaults{MaxTokens: 256, IgnoreEOS: true, Requests: 5, Concurrency: 1}, nil
	case SuiteBatchScaling:
		return SuiteDefaults{MaxTokens: 256, IgnoreEOS: true, InputLen: 105, Levels: []int{1, 2, 4, 8, 16}}, nil
	case SuiteLongContext:
		return SuiteDefaults{MaxTokens: 128, IgnoreEOS: true, Requests: 1, Concurrency: 1, Levels: []int{5000, 20000, 40000}}, nil
	case SuiteScenarios:
		// Answers end where the model ends them: time per category is
		// part of what is measured.
		return SuiteDefaults{MaxTokens: 256, Requests: 5, Concurrency: 1}, nil
	case SuiteCapacity:
		return SuiteDefaults{MaxTokens: 128, IgnoreEOS: true, InputLen: 105, Levels: []int{1, 2, 4, 8, 16, 32, 64, 128, 256}}, nil
	case SuiteStress:
		return SuiteDefaults{MaxTokens: 256, IgnoreEOS: true, InputLen: 105, Requests: 2000, Concurrency: 256}, nil
	case SuiteCustom:
		return SuiteDefaults{MaxTokens: 256, InputLen: 105, Requests: 100, Concurrency: 1}, nil
	}
	return SuiteDefaults{}, fmt.Errorf("unknown suite %q (have %s)", suite, strings.Join(SuiteNames(), ", "))
}

// SuiteConfig is a resolved suite: defaults already merged with flags.
type SuiteConfig struct {
	Suite       string
	Target      Target
	Tokenizer   *tokenizer.Tokenizer
	Sampling    Sampling
	InputLen    int
	Requests    int // per level; ≤ 0: twice the level (batch-scaling, capacity)
	Concurrency int
	Levels      []int
	// Prompts, when set, replace the suite's own (e.g. --prompt).
	Prompts []Prompt
	// RequestRate and Burstiness shape arrivals (custom and stress).
	RequestRate    float64
	Burstiness     float64
	SLO            SLO
	Seed           uint64
	RequestTimeout time.Duration
	Warmup         int
	Progress       *Progress
	// Log hears a line per level as the suite goes (may be nil).
	Log io.Writer
}

// ReportTarget is the target as recorded: never the API key.
type ReportTarget struct {
	BaseURL  string `json:"base_url"`
	Model    string `json:"model"`
	Endpoint string `json:"endpoint"`
}

// RunReport is one measured run inside a suite.
type RunReport struct {
	Label       string  `json:"label"`
	Concurrency int     `json:"concurrency"`
	InputLen    int     `json:"input_len,omitempty"`
	Category    string  `json:"category,omitempty"`
	RequestRate float64 `json:"request_rate,omitempty"` // 0: as fast as allowed
	RunResult
}

// CapacityLevel is one concurrency level of the capacity suite.
type CapacityLevel struct {
	Concurrency int     `json:"concurrency"`
	TTFTP50Ms   float64 `json:"ttft_p50_ms"`
	SuccessRate float64 `json:"success_rate"`
}

// Capacity is the capacity suite's verdict.
type Capacity struct {
	TTFTBoundMs float64         `json:"ttft_bound_ms"`
	Levels      []CapacityLevel `json:"levels"`
	// MaxConcurrency is the largest level whose TTFT p50 stayed under the
	// bound with every request answered; 0 when even 1 did not.
	MaxConcurrency int `json:"max_concurrency"`
}

// Report is what a suite writes as JSON and renders as HTML.
type Report struct {
	Suite     string       `json:"suite"`
	Target    ReportTarget `json:"target"`
	StartedAt time.Time    `json:"started_at"`
	MaxTokens int          `json:"max_tokens"`
	IgnoreEOS bool         `json:"ignore_eos"`
	SLO       string       `json:"slo,omitempty"`
	Runs      []RunReport  `json:"runs"`
	Capacity  *Capacity    `json:"capacity,omitempty"`
}

// RunSuite runs a suite. A failed request is data; an error means the
// suite could not run (bad settings, unreachable server, interrupted — then
// the report holds what was measured).
func RunSuite(ctx context.Context, cfg SuiteConfig) (*Report, error) {
	if cfg.Tokenizer == nil {
		return nil, fmt.Errorf("suite %s: no tokenizer", cfg.Suite)
	}
	if cfg.Target.Endpoint == "" {
		cfg.Target.Endpoint = EndpointCompletions
	}
	if cfg.Sampling.MaxTokens <= 0 {
		return nil, fmt.Errorf("suite %s: max tokens must be at least 1, got %d", cfg.Suite, cfg.Sampling.MaxTokens)
	}
	rep := &Report{
		Suite: cfg.Suite, StartedAt: time.Now().UTC(), MaxTokens: cfg.Sampling.MaxTokens, IgnoreEOS: cfg.Sampling.IgnoreEOS, SLO: cfg.SLO.String(),
		Target: ReportTarget{BaseURL: cfg.Target.BaseURL, Model: cfg.Target.Model, Endpoint: cfg.Target.Endpoint},
	}
	// A short warm-up keeps one-time server costs out of the first level.
	if cfg.Warmup > 0 {
		warm := TextPrompt(cfg.Tokenizer, "Say hello.", "")
		ws := cfg.Sampling
		ws.MaxTokens = min(ws.MaxTokens, 8)
		if err := Warmup(ctx, cfg.Target, warm, ws, cfg.Warmup); err != nil {
			return nil, fmt.Errorf("suite %s: %w (is the server at %s up?)", cfg.Suite, err, cfg.Target.BaseURL)
		}
	}
	var err error
	switch cfg.Suite {
	case SuiteInteractive:
		prompts := cfg.Prompts
		if prompts == nil {
			prompts = []Prompt{TextPrompt(cfg.Tokenizer, InteractivePrompt, "")}
		}
		err = cfg.level(ctx, rep, "batch 1", prompts, max(cfg.Requests, 1), 1, "")
	case SuiteBatchScaling:
		err = cfg.batchScaling(ctx, rep)
	case SuiteLongContext:
		err = cfg.longContext(ctx, rep)
	case SuiteScenarios:
		err = cfg.scenarios(ctx, rep)
	case SuiteCapacity:
		err = cfg.capacity(ctx, rep)
	case SuiteStress, SuiteCustom:
		prompts, perr := cfg.prompts(max(cfg.Requests, 1), cfg.InputLen, cfg.Seed)
		if perr != nil {
			return nil, perr
		}
		label := fmt.Sprintf("concurrency %d", cfg.Concurrency)
		if cfg.Concurrency <= 0 {
			label = "unbounded concurrency"
		}
		if cfg.RequestRate > 0 && !math.IsInf(cfg.RequestRate, 1) {
			label += fmt.Sprintf(", %s arrivals (burstiness %g)", rateText(cfg.RequestRate), cfg.Burstiness)
		}
		err = cfg.level(ctx, rep, label, prompts, cfg.Requests, cfg.Concurrency, "")
	default:
		_, err = DefaultsFor(cfg.Suite)
		return nil, err
	}
	return rep, err
}

// prompts returns the configured prompts, or n random ones of inputLen.
func (cfg *SuiteConfig) prompts(n, inputLen int, seed uint64) ([]Prompt, error) {
	if cfg.Prompts != nil {
		return cfg.Prompts, nil
	}
	if inputLen <= 0 {
		return []Prompt{TextPrompt(cfg.Tokenizer, InteractivePrompt, "")}, nil
	}
	return RandomPrompts(cfg.Tokenizer, n, inputLen, seed)
}

// level runs one measured load and appends it to the report.
func (cfg *SuiteConfig) level(ctx context.Context, rep *Report, label string, prompts []Prompt, requests, concurrency int, category string) error {
	if cfg.Progress != nil {
		cfg.Progress.SetLabel(label)
	}
	rate := cfg.RequestRate
	if math.IsInf(rate, 1) {
		rate = 0
	}
	res, err := Run(ctx, LoadConfig{
		Target: cfg.Target, Prompts: prompts, Requests: requests, Concurrency: concurrency,
		RequestRate: rate, Burstiness: cfg.Burstiness, Seed: cfg.Seed, Sampling: cfg.Sampling,
		RequestTimeout: cfg.RequestTimeout, SLO: cfg.SLO, Tokenizer: cfg.Tokenizer, Progress: cfg.Progress,
	})
	inputLen := 0
	if len(prompts) > 0 {
		inputLen = prompts[0].Tokens
	}
	rep.Runs = append(rep.Runs, RunReport{Label: label, Concurrency: concurrency, InputLen: inputLen, Category: category, RequestRate: rate, RunResult: res})
	if cfg.Log != nil && err == nil {
		s := res.Summary
		fmt.Fprintf(cfg.Log, "%s: %d/%d ok, %.1f output tok/s, TTFT p50 %.0f ms\n", label, s.Completed, s.Requests, s.OutputThroughput, s.TTFT.Median)
	}
	return err
}

// perLevel is how many requests a concurrency level sends: the flag's
// count, but never fewer than the level (else it is never reached).
func (cfg *SuiteConfig) perLevel(level int) int {
	if cfg.Requests > 0 {
		return max(cfg.Requests, level)
	}
	return 2 * level
}

func (cfg *SuiteConfig) batchScaling(ctx context.Context, rep *Report) error {
	for i, c := range cfg.Levels {
		n := cfg.perLevel(c)
		// A fresh seed per level: no level reuses another's prompts, so a
		// prefix cache cannot favour later levels.
		prompts, err := cfg.prompts(n, cfg.InputLen, cfg.Seed+uint64(i)*1000)
		if err != nil {
			return err
		}
		if err := cfg.level(ctx, rep, fmt.Sprintf("concurrency %d", c), prompts, n, c, ""); err != nil {
			return err
		}
	}
	return nil
}

func (cfg *SuiteConfig) longContext(ctx context.Context, rep *Report) error {
	for i, n := range cfg.Levels {
		prompts, err := RandomPrompts(cfg.Tokenizer, max(cfg.Requests, 1), n, cfg.Seed+uint64(i)*1000)
		if err != nil {
			return err
		}
		if err := cfg.level(ctx, rep, fmt.Sprintf("%d-token prompt", n), prompts, max(cfg.Requests, 1), 1, ""); err != nil {
			return err
		}
	}
	return nil
}

func (cfg *SuiteConfig) scenarios(ctx context.Context, rep *Report) error {
	all := ScenarioPrompts(cfg.Tokenizer)
	for _, cat := range scenarioCategories() {
		var prompts []Prompt
		for _, p := range all {
			if p.Category == cat {
				prompts = append(prompts, p)
			}
		}
		// Every prompt of the category once, or the requested count.
		n := len(prompts)
		if cfg.Requests > 0 {
			n = cfg.Requests
		}
		if err := cfg.level(ctx, rep, cat, prompts, n, 1, cat); err != nil {
			return err
		}
	}
	return nil
}

func (cfg *SuiteConfig) capacity(ctx context.Context, rep *Report) error {
	bound := cfg.SLO.TTFT
	if bound <= 0 {
		bound = 2 * time.Second
	}
	capa := &Capacity{TTFTBoundMs: float64(bound.Milliseconds())}
	rep.Capacity = capa
	for i, c := range cfg.Levels {
		n := cfg.perLevel(c)
		prompts, err := cfg.prompts(n, cfg.InputLen, cfg.Seed+uint64(i)*1000)
		if err != nil {
			return err
		}
		if err := cfg.level(ctx, rep, fmt.Sprintf("concurrency %d", c), prompts, n, c, ""); err != nil {
			return err
		}
		s := rep.Runs[len(rep.Runs)-1].Summary
		capa.Levels = append(capa.Levels, CapacityLevel{Concurrency: c, TTFTP50Ms: s.TTFT.Median, SuccessRate: s.SuccessRate})
		if s.Completed == 0 || s.SuccessRate < 1 || s.TTFT.Median > capa.TTFTBoundMs {
			break // past capacity: higher levels only queue longer
		}
		capa.MaxConcurrency = c
	}
	return nil
}

// WriteTable prints a suite's table.
func (rep *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "suite %s: %s model %s via %s, max_tokens %d, ignore_eos %v\n", rep.Suite, rep.Target.BaseURL, rep.Target.Model, rep.Target.Endpoint, rep.MaxTokens, rep.IgnoreEOS)
	switch rep.Suite {
	case SuiteBatchScaling, SuiteCapacity:
		fmt.Fprintln(tw, "concurrency\trequests\tok\tout tok/s\treq/s\tper-req tok/s\tTTFT p50 ms\tTTFT p99 ms\tTPOT p50 ms\tE2E p50 s\t")
		for _, r := range rep.Runs {
			s := r.Summary
			fmt.Fprintf(tw, "%d\t%d\t%d\t%.1f\t%.2f\t%.1f\t%.1f\t%.1f\t%.2f\t%.2f\t\n", r.Concurrency, s.Requests, s.Completed, s.OutputThroughput, s.RequestThroughput,
				s.MeanDecodeRate, s.TTFT.Median, s.TTFT.P99, s.TPOT.Median, s.E2E.Median/1000)
		}
	case SuiteLongContext:
		fmt.Fprintln(tw, "prompt tokens\tok\tTTFT ms\tprefill tok/s\tdecode tok/s\tE2E s\t")
		for _, r := range rep.Runs {
			s := r.Summary
			prefill := 0.0
			if s.TTFT.Mean > 0 && s.Completed > 0 {
				prefill = float64(s.TotalInputTokens) / float64(s.Completed) / (s.TTFT.Mean / 1000)
			}
			fmt.Fprintf(tw, "%d\t%d/%d\t%.1f\t%.0f\t%.1f\t%.2f\t\n", r.InputLen, s.Completed, s.Requests, s.TTFT.Mean, prefill, s.MeanDecodeRate, s.E2E.Mean/1000)
		}
	case SuiteScenarios:
		fmt.Fprintln(tw, "category\tok\toutput tokens\ttotal time s\ttok/s\tTTFT p50 ms\t")
		for _, r := range rep.Runs {
			s := r.Summary
			total := totalE2E(r.Requests)
			rate := 0.0
			if total > 0 {
				rate = float64(s.TotalOutputTokens) / total
			}
			fmt.Fprintf(tw, "%s\t%d/%d\t%d\t%.2f\t%.1f\t%.1f\t\n", r.Label, s.Completed, s.Requests, s.TotalOutputTokens, total, rate, s.TTFT.Median)
		}
	default: // interactive, stress, custom: one run each
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, r := range rep.Runs {
			r.Summary.WriteText(w, r.Label)
		}
		return nil
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rep.Capacity != nil {
		fmt.Fprintf(w, "largest concurrency with TTFT p50 under %.0f ms and no failures: %d\n", rep.Capacity.TTFTBoundMs, rep.Capacity.MaxConcurrency)
	}
	for _, r := range rep.Runs {
		for class, n := range r.Summary.Errors {
			fmt.Fprintf(w, "%s: %d failed with %s\n", r.Label, n, class)
		}
		for _, warn := range r.Summary.Warnings {
			fmt.Fprintf(w, "%s: warning: %s\n", r.Label, warn)
		}
	}
	return nil
}

// totalE2E is the summed end-to-end time of the successful requests.
func totalE2E(rs []RequestResult) float64 {
	var t float64
	for _, r := range rs {
		if r.OK {
			t += r.E2ES
		}
	}
	return t
}

// WriteText prints a summary in the layout of vLLM's benchmark_serving.
func (s Summary) WriteText(w io.Writer, title string) {
	line := func(name string, format string, v ...any) {
		fmt.Fprintf(w, "%-40s"+format+"\n", append([]any{name + ":"}, v...)...)
	}
	fmt.Fprintf(w, "%s\n", center(" Serving Benchmark Result: "+title+" ", 60, '='))
	line("Successful requests", "%d", s.Completed)
	line("Failed requests", "%d", s.Failed)
	line("Success rate", "%.1f%%", 100*s.SuccessRate)
	line("Benchmark duration (s)", "%.2f", s.DurationS)
	line("Total input tokens", "%d", s.TotalInputTokens)
	line("Total generated tokens", "%d", s.TotalOutputTokens)
	line("Request throughput (req/s)", "%.2f", s.RequestThroughput)
	line("Output token throughput (tok/s)", "%.2f", s.OutputThroughput)
	line("Total token throughput (tok/s)", "%.2f", s.TotalThroughput)
	line("Mean per-request decode (tok/s)", "%.2f", s.MeanDecodeRate)
	line("Max concurrent requests", "%d", s.MaxConcurrency)
	if s.SLO != "" {
		line("Good requests ("+s.SLO+")", "%d", s.GoodRequests)
		line("Request goodput (req/s)", "%.2f", s.Goodput)
	}
	for _, m := range []struct {
		name string
		d    Distribution
	}{{"Time to First Token", s.TTFT}, {"Time per Output Token (excl. 1st token)", s.TPOT}, {"Inter-token Latency", s.ITL}, {"End-to-end Latency", s.E2E}} {
		fmt.Fprintf(w, "%s\n", center(m.name, 60, '-'))
		line("Mean (ms)", "%.2f", m.d.Mean)
		line("Median (ms)", "%.2f", m.d.Median)
		line("P90 (ms)", "%.2f", m.d.P90)
		line("P99 (ms)", "%.2f", m.d.P99)
	}
	classes := make([]string, 0, len(s.Errors))
	for c := range s.Errors {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	for _, c := range classes {
		line("Failed with "+c, "%d", s.Errors[c])
	}
	fmt.Fprintln(w, strings.Repeat("=", 60))
	for _, warn := range s.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

func center(s string, width int, fill byte) string {
	if len(s) >= width {
		return s
	}
	left := (width - len(s)) / 2
	return strings.Repeat(string(fill), left) + s + strings.Repeat(string(fill), width-len(s)-left)
}
