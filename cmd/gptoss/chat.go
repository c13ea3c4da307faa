package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gptoss/gptoss/engine"
	"github.com/gptoss/gptoss/harmony"
	"github.com/gptoss/gptoss/tokenizer"
)

// ANSI styles for the reasoning; only written to a terminal.
const (
	ansiDim   = "\x1b[2m"
	ansiReset = "\x1b[0m"
)

const chatHelp = `commands: /reset starts a new conversation, /exit quits (or Ctrl-D);
Ctrl-C stops the answer being generated.`

func cmdChat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// main's context ends on the first Ctrl-C; here Ctrl-C must only stop
	// the answer being generated, so the session outlives it and watches
	// the signals itself (SIGTERM still quits).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	return chatMain(context.WithoutCancel(ctx), args, chatIO{
		in: os.Stdin, out: stdout, err: stderr, signals: sigs,
		interactive: isTerminal(os.Stdin),
		color:       isTerminal(os.Stdout) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb",
	})
}

// chatIO is the terminal a chat runs on; tests substitute pipes.
type chatIO struct {
	in          io.Reader
	out, err    io.Writer
	signals     <-chan os.Signal // os.Interrupt stops a generation; anything else quits
	interactive bool             // stdin is a terminal: show a prompt
	color       bool             // stdout is a terminal: dim the reasoning
}

// isTerminal reports whether f is a terminal. TIOCGWINSZ succeeds only on
// one and, unlike the termios request, has the same name on Linux and the BSDs.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	return err == nil
}

func chatMain(ctx context.Context, args []string, tio chatIO) error {
	fs := newFlags("chat", tio.err)
	var mf modelFlags
	mf.register(fs)
	mf.registerCPU(fs)
	effort := fs.String("reasoning-effort", "medium", "how much the model reasons first: low, medium or high")
	temperature := fs.Float64("temperature", 1, "sampling temperature in [0, 2]; 0 is greedy")
	topP := fs.Float64("top-p", 1, "nucleus sampling mass in (0, 1]")
	seed := fs.Uint64("seed", 0, "sampling seed (default: random)")
	maxTokens := fs.Int("max-tokens", 4096, "most tokens generated per answer, reasoning included")
	maxLen := fs.Int("max-model-len", 8192, "most tokens of the whole conversation")
	system := fs.String("system", "", "instructions for the model (harmony's developer message)")
	hideReasoning := fs.Bool("hide-reasoning", false, "do not show the reasoning")
	cacheDir := fs.String("cache-dir", defaultCacheDir(), "where the default synthetic model is created on first run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (messages are read from stdin)", fs.Arg(0))
	}
	sys := harmony.DefaultSystemContent()
	switch e := harmony.ReasoningEffort(strings.ToLower(*effort)); e {
	case harmony.EffortLow, harmony.EffortMedium, harmony.EffortHigh:
		sys.ReasoningEffort = e
	default:
		return fmt.Errorf("--reasoning-effort %q: want low, medium or high", *effort)
	}
	sys.CurrentDate = time.Now().Format("2006-01-02")
	samp := engine.DefaultSampling()
	samp.Temperature, samp.TopP = *temperature, *topP
	if fs.Changed("seed") {
		samp.Seed = seed
	}
	if err := samp.Validate(); err != nil {
		return fmt.Errorf("sampling flags: %w", err)
	}
	if *maxTokens <= 0 {
		return fmt.Errorf("--max-tokens %d must be positive", *maxTokens)
	}
	if *maxLen <= 0 {
		return fmt.Errorf("--max-model-len %d must be positive", *maxLen)
	}

	log := slog.New(slog.NewTextHandler(tio.err, nil))
	random := false
	if mf.dir == "" {
		dir, err := ensureDefaultModel(ctx, *cacheDir, log)
		if err != nil {
			return fmt.Errorf("the default model: %w", err)
		}
		mf.dir, random = dir, true
	}
	m, ck, err := mf.load()
	if err != nil {
		return err
	}
	defer ck.Close()
	tok, err := tokenizer.Load(mf.dir)
	if err != nil {
		return err
	}
	if m.Config.MaxPositions > 0 && *maxLen > m.Config.MaxPositions {
		*maxLen = m.Config.MaxPositions
	}
	// One sequence at a time, so the KV budget only has to admit it; the
	// cache itself grows with the conversation.
	eng, err := engine.New(m, engine.Options{MaxSeqs: 1, MaxModelLen: *maxLen, KVCacheBytes: 1 << 50, MaxQueue: 1, StepTokens: 512})
	if err != nil {
		return err
	}
	// If the engine stops on its own (a backend failure), a generation
	// waiting for tokens must end too: its context derives from this one.
	engCtx, engStopped := context.WithCancelCause(ctx)
	runDone := make(chan error, 1)
	go func() {
		err := eng.Run(engCtx)
		engStopped(fmt.Errorf("the engine stopped: %v", err))
		runDone <- err
	}()
	defer func() {
		eng.Close()
		engStopped(context.Canceled)
		<-runDone
	}()
	if random {
		fmt.Fprintf(tio.err, "note: no --model given, so this is the synthetic tiny model with RANDOM weights (%s): its answers mean nothing.\n", mf.dir)
	}
	if tio.interactive {
		fmt.Fprintf(tio.err, "chatting with %s (reasoning %s). %s\n", mf.dir, sys.ReasoningEffort, chatHelp)
	}

	c := &chatSession{
		eng: eng, tok: tok, io: tio, sys: sys, system: *system, samp: samp,
		maxTokens: *maxTokens, maxLen: *maxLen, showReasoning: !*hideReasoning,
	}
	return c.loop(engCtx)
}

// chatSession is one conversation: the messages so far (user turns and the
// assistant's final answers) and how to generate the next answer.
type chatSession struct {
	eng           *engine.Engine
	tok           *tokenizer.Tokenizer
	io            chatIO
	sys           harmony.SystemContent
	system        string
	samp          engine.Sampling
	maxTokens     int
	maxLen        int
	showReasoning bool
	history       []harmony.Message
}

// loop reads one message per line until EOF, /exit, or a quit signal.
func (c *chatSession) loop(ctx context.Context) error {
	lines, readErr := readLines(ctx, c.io.in)
	interrupted := false // a Ctrl-C at the prompt; a second one quits
	for {
		if c.io.interactive {
			fmt.Fprint(c.io.out, ">>> ")
		}
		var line string
		select {
		case <-ctx.Done():
			// Only the engine stopping on its own ends ctx here.
			return context.Cause(ctx)
		case sig := <-c.io.signals:
			if sig != os.Interrupt || interrupted {
				fmt.Fprintln(c.io.out)
				return nil
			}
			interrupted = true
			fmt.Fprintln(c.io.out)
			fmt.Fprintln(c.io.err, "(Ctrl-C again, Ctrl-D or /exit to quit)")
			continue
		case l, ok := <-lines:
			if !ok {
				if c.io.interactive {
					fmt.Fprintln(c.io.out)
				}
				select {
				case err := <-readErr:
					return fmt.Errorf("reading stdin: %w", err)
				default:
					return nil
				}
			}
			line = l
		}
		interrupted = false
		text := strings.TrimSpace(line)
		switch text {
		case "":
			continue
		case "/exit", "/quit", "/bye":
			return nil
		case "/reset", "/clear":
			c.history = nil
			fmt.Fprintln(c.io.err, "(new conversation)")
			continue
		case "/help", "/?":
			fmt.Fprintln(c.io.err, chatHelp)
			continue
		}
		quit, err := c.turn(ctx, strings.TrimRight(line, "\r\n"))
		if err != nil {
			return err
		}
		if quit {
			return nil
		}
		fmt.Fprintln(c.io.out) // a blank line between turns
	}
}

// readLines delivers stdin line by line so the loop can wait for input and
// for signals at once. The reader goroutine ends at EOF or with ctx.
func readLines(ctx context.Context, in io.Reader) (<-chan string, <-chan error) {
	lines := make(chan string)
	errc := make(chan error, 1)
	go func() {
		defer close(lines)
		r := bufio.NewReader(in)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				select {
				case lines <- line:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					errc <- err
				}
				return
			}
		}
	}()
	return lines, errc
}

// turn answers one user message, streaming the reasoning and the answer
// to stdout. It reports quit when a signal other than Ctrl-C arrived.
func (c *chatSession) turn(ctx context.Context, text string) (quit bool, err error) {
	msgs := []harmony.Message{harmony.SystemMessage(c.sys)}
	if c.system != "" {
		msgs = append(msgs, harmony.DeveloperMessage(harmony.DeveloperContent{Instructions: c.system}))
	}
	user := harmony.UserMessage(text)
	msgs = append(append(msgs, c.history...), user)
	r, err := harmony.RenderCompletion(msgs, harmony.RenderOptions{})
	if err != nil {
		return false, fmt.Errorf("rendering the conversation: %w", err)
	}
	ids := r.Tokens(c.tok)
	prompt := make([]int32, len(ids))
	for i, id := range ids {
		prompt[i] = int32(id)
	}
	maxTokens := min(c.maxTokens, c.maxLen-len(prompt))
	if maxTokens <= 0 {
		// Recoverable: the user can /reset and go on.
		fmt.Fprintf(c.io.err, "(the conversation is %d tokens, the model length is %d: /reset to start a new one)\n", len(prompt), c.maxLen)
		return false, nil
	}

	genCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.eng.Submit(genCtx, engine.Request{
		Prompt: prompt, MaxTokens: maxTokens, Sampling: c.samp,
		StopTokens: assistantStops(),
	})
	if err != nil {
		return false, fmt.Errorf("starting the generation: %w", err)
	}
	// Watch for Ctrl-C while tokens stream; the loop owns the signals
	// again once the watcher has returned.
	var stopped, quitSig bool
	watchDone, watcherGone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watcherGone)
		select {
		case sig := <-c.io.signals:
			stopped, quitSig = true, sig != os.Interrupt
			cancel()
		case <-watchDone:
		}
	}()

	v := newChatView(c.io.out, c.io.color, c.showReasoning)
	parser := harmony.NewParser(harmony.ParserOptions{})
	var finish string
	var genErr error
	for {
		ev, err := stream.Next(genCtx)
		if err != nil {
			if cause := context.Cause(ctx); cause != nil {
				genErr = cause // the engine stopped under us
			}
			break
		}
		if ev.Done {
			finish = ev.FinishReason
			if ev.Err != nil {
				genErr = fmt.Errorf("generation failed: %w", ev.Err)
			}
			break
		}
		piece, _ := c.tok.TokenString(int(ev.Token.ID))
		v.show(parser.Push(int(ev.Token.ID), piece))
	}
	close(watchDone)
	<-watcherGone
	if finish == engine.FinishStop || finish == engine.FinishLength {
		v.show(parser.Finish())
	}
	v.end()

	switch {
	case genErr != nil && !errors.Is(genErr, context.Canceled):
		return false, genErr
	case stopped:
		fmt.Fprintln(c.io.err, "(stopped)")
	case finish == engine.FinishLength:
		fmt.Fprintf(c.io.err, "(cut off at %d tokens: --max-tokens or the model length)\n", maxTokens)
	}
	// Keep the answer, even a stopped one, since the user saw it; the
	// reasoning is dropped, as harmony drops it once a turn is answered.
	c.history = append(c.history, user)
	if answer := v.answer.String(); answer != "" {
		c.history = append(c.history, harmony.AssistantMessage(harmony.ChannelFinal, answer))
	}
	return quitSig, nil
}

// chatView writes parser events to the terminal: the reasoning dimmed (or,
// off a terminal, between "Thinking..." and "...done thinking."), the
// answer plainly.
type chatView struct {
	w             io.Writer
	color         bool
	showReasoning bool
	mode          int // what was written last: viewNone, viewReasoning, viewAnswer
	answer        strings.Builder
}

const (
	viewNone = iota
	viewReasoning
	viewAnswer
)

func newChatView(w io.Writer, color, showReasoning bool) *chatView {
	return &chatView{w: w, color: color, showReasoning: showReasoning}
}

func (v *chatView) show(evs []harmony.Event) {
	for _, ev := range evs {
		switch ev := ev.(type) {
		case harmony.ReasoningDelta:
			if !v.showReasoning || ev.Text == "" {
				continue
			}
			if v.mode != viewReasoning {
				v.closeMode()
				if v.color {
					io.WriteString(v.w, ansiDim)
				} else {
					io.WriteString(v.w, "Thinking...\n")
				}
				v.mode = viewReasoning
			}
			io.WriteString(v.w, ev.Text)
		case harmony.ContentDelta:
			if ev.Text == "" {
				continue
			}
			if v.mode != viewAnswer {
				v.closeMode()
				v.mode = viewAnswer
			}
			v.answer.WriteString(ev.Text)
			io.WriteString(v.w, ev.Text)
		case harmony.ToolCall:
			// chat offers no tools; say what the model tried rather
			// than hide it.
			v.closeMode()
			v.mode = viewNone
			note := fmt.Sprintf("[the model called %s(%s), but chat has no tools]", ev.Name, ev.Arguments)
			if v.color {
				note = ansiDim + note + ansiReset
			}
			fmt.Fprintln(v.w, note)
		}
	}
}

// closeMode ends the current section so the next one starts on its own
// paragraph.
func (v *chatView) closeMode() {
	switch v.mode {
	case viewReasoning:
		if v.color {
			io.WriteString(v.w, ansiReset+"\n\n")
		} else {
			io.WriteString(v.w, "\n...done thinking.\n\n")
		}
	case viewAnswer:
		io.WriteString(v.w, "\n\n")
	}
}

// end finishes the turn's output with a newline and the terminal's style reset.
func (v *chatView) end() {
	switch v.mode {
	case viewReasoning:
		v.closeMode()
	case viewAnswer:
		io.WriteString(v.w, "\n")
	}
	v.mode = viewNone
}
