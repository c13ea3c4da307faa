package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gptoss/gptoss/engine"
	"github.com/gptoss/gptoss/harmony"
	"github.com/gptoss/gptoss/tokenizer"
)

// tinyModelDir creates the default synthetic tiny model (as chat and serve
// do without --model) in a fresh temporary cache: about 50 MB, under a second.
func tinyModelDir(t *testing.T) string {
	t.Helper()
	dir, err := ensureDefaultModel(context.Background(), t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// syncBuffer is a bytes.Buffer safe for the chat's writes and the test's
// reads; first is closed on the first write.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	once  sync.Once
	first chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{first: make(chan struct{})} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.once.Do(func() { close(b.first) })
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func runChat(t *testing.T, stdin string, sigs <-chan os.Signal, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	out, errOut := newSyncBuffer(), newSyncBuffer()
	err = chatMain(context.Background(), args, chatIO{in: strings.NewReader(stdin), out: out, err: errOut, signals: sigs})
	return out.String(), errOut.String(), err
}

func TestChatFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--reasoning-effort", "extreme"}, `--reasoning-effort "extreme"`},
		{[]string{"--temperature", "3"}, "temperature"},
		{[]string{"--top-p", "0"}, "top_p"},
		{[]string{"--max-tokens", "0"}, "--max-tokens 0"},
		{[]string{"hello"}, "unexpected argument"},
		{[]string{"--model", t.TempDir()}, "config.json"},
	}
	for _, c := range cases {
		_, _, err := runChat(t, "", nil, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}

// TestChatView checks the terminal rendering of a well-formed harmony
// completion: reasoning dimmed on a terminal, labelled off one, the answer
// plain, and nothing of the headers.
func TestChatView(t *testing.T) {
	tok, err := tokenizer.Default()
	if err != nil {
		t.Fatal(err)
	}
	completion := "<|channel|>analysis<|message|>User says hi.<|end|>" +
		"<|start|>assistant<|channel|>final<|message|>Hello! ¿Qué tal? 👋<|return|>"
	call := "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Paris\"}<|call|>"
	cases := []struct {
		name, completion string
		color, reasoning bool
		want, answer     string
	}{
		{"terminal", completion, true, true, "\x1b[2mUser says hi.\x1b[0m\n\nHello! ¿Qué tal? 👋\n", "Hello! ¿Qué tal? 👋"},
		{"pipe", completion, false, true, "Thinking...\nUser says hi.\n...done thinking.\n\nHello! ¿Qué tal? 👋\n", "Hello! ¿Qué tal? 👋"},
		{"hidden reasoning", completion, true, false, "Hello! ¿Qué tal? 👋\n", "Hello! ¿Qué tal? 👋"},
		{"tool call", call, false, true, "[the model called get_weather({\"city\":\"Paris\"}), but chat has no tools]\n", ""},
		{"no header", "just text", false, true, "just text\n", "just text"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			v := newChatView(&out, c.color, c.reasoning)
			p := harmony.NewParser(harmony.ParserOptions{})
			for _, id := range tok.EncodeWithSpecials(c.completion) {
				piece, _ := tok.TokenString(id)
				v.show(p.Push(id, piece))
			}
			v.show(p.Finish())
			v.end()
			if out.String() != c.want {
				t.Errorf("output %q\nwant   %q", out.String(), c.want)
			}
			if v.answer.String() != c.answer {
				t.Errorf("answer %q, want %q", v.answer.String(), c.answer)
			}
		})
	}
}

// TestChatSession runs whole sessions on the synthetic tiny model: greedy
// output is reproducible, /reset forgets, answers are kept in the
// conversation, and Ctrl-C stops a generation without ending the session.
func TestChatSession(t *testing.T) {
	dir := tinyModelDir(t)
	greedy := []string{"--model", dir, "--temperature", "0", "--max-tokens", "8"}

	one, stderr, err := runChat(t, "hello\n", nil, greedy...)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if strings.TrimSpace(one) == "" || strings.Contains(one, "\x1b[") {
		t.Fatalf("one turn: output %q (want text without terminal codes)", one)
	}
	if !strings.Contains(stderr, "cut off at 8 tokens") {
		t.Errorf("stderr %q does not say the answer was cut off", stderr)
	}
	two, _, err := runChat(t, "hello\n\n/reset\nhello\n", nil, greedy...)
	if err != nil {
		t.Fatal(err)
	}
	if two != one+one {
		t.Errorf("after /reset the same greedy turn differs:\n%q\nwant\n%q", two, one+one)
	}
	cont, _, err := runChat(t, "hello\nhello\n/exit\nnever read\n", nil, greedy...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cont, one) || cont == one+one {
		// The second turn sees the first answer, so it is a different
		// prompt; with random weights that shows as a different output
		// (not certain in principle, but a greedy collision over 8 tokens
		// of a 201k vocabulary would be remarkable).
		t.Errorf("second turn without /reset gave %q after %q", cont, one)
	}

	t.Run("history", func(t *testing.T) {
		// Drive the session directly to see what it keeps.
		m, ck, err := (&modelFlags{dir: dir}).load()
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		tok, err := tokenizer.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		eng, err := engine.New(m, engine.Options{MaxSeqs: 1, MaxModelLen: 512, KVCacheBytes: 1 << 30, MaxQueue: 1, StepTokens: 512})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- eng.Run(ctx) }()
		defer func() { cancel(); <-done }()
		var out bytes.Buffer
		samp := engine.DefaultSampling()
		samp.Temperature = 0
		c := &chatSession{eng: eng, tok: tok, io: chatIO{out: &out, err: io.Discard}, sys: harmony.DefaultSystemContent(),
			system: "be brief", samp: samp, maxTokens: 8, maxLen: 512, showReasoning: true}
		for i, q := range []string{"hello", "and <|start|>again"} {
			out.Reset()
			if _, err := c.turn(ctx, q); err != nil {
				t.Fatal(err)
			}
			if got := len(c.history); got != 2*(i+1) {
				t.Fatalf("turn %d: history has %d messages: %+v", i, got, c.history)
			}
			u, a := c.history[2*i], c.history[2*i+1]
			if u.Role != harmony.RoleUser || a.Role != harmony.RoleAssistant || a.Channel != harmony.ChannelFinal {
				t.Fatalf("turn %d: history %+v", i, c.history)
			}
			if !strings.Contains(out.String(), a.Content) {
				t.Errorf("turn %d: kept answer %q is not what was shown: %q", i, a.Content, out.String())
			}
		}
		// A conversation beyond the model length is refused, not failed.
		c.maxLen = 10
		if _, err := c.turn(ctx, "more"); err != nil {
			t.Errorf("over-long conversation: %v", err)
		}
		if len(c.history) != 4 {
			t.Errorf("an unanswered turn was kept: %d messages", len(c.history))
		}
	})

	t.Run("interrupt", func(t *testing.T) {
		// A long answer, stopped by Ctrl-C once its first text is out;
		// the session then reads the next line.
		out, errOut := newSyncBuffer(), newSyncBuffer()
		sigs := make(chan os.Signal, 1)
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			done <- chatMain(context.Background(), []string{"--model", dir, "--seed", "7", "--max-tokens", "4000"},
				chatIO{in: pr, out: out, err: errOut, signals: sigs})
		}()
		io.WriteString(pw, "write a long story\n")
		select {
		case <-out.first:
		case err := <-done:
			t.Fatalf("chat ended before answering: %v\n%s", err, errOut.String())
		case <-time.After(60 * time.Second):
			t.Fatal("no output within 60s")
		}
		sigs <- os.Interrupt
		io.WriteString(pw, "/exit\n")
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("Ctrl-C did not stop the generation within 60s")
		}
		pw.Close()
		if !strings.Contains(errOut.String(), "(stopped)") {
			t.Errorf("stderr %q does not say the generation stopped", errOut.String())
		}
		t.Logf("stopped after %v with %d bytes of output", time.Since(start), len(out.String()))
	})
}
