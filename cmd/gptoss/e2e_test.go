package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEndToEndOpenAIClient serves the default tiny model on a random
// loopback port, in process, and runs server/e2e/e2e.mjs against it: the
// official openai npm client on every endpoint, errors, 32 concurrent
// streams and a client that disconnects.
//
// It needs node and the npm dependencies (npm ci --prefix server/e2e).
// Without them it skips, unless GPTOSS_E2E=1 (as in CI), where a missing
// prerequisite is a failure.
func TestEndToEndOpenAIClient(t *testing.T) {
	e2eDir, err := filepath.Abs("../../server/e2e")
	if err != nil {
		t.Fatal(err)
	}
	missing := func(why string) {
		t.Helper()
		if os.Getenv("GPTOSS_E2E") == "1" {
			t.Fatalf("the openai-client end-to-end test cannot run: %s (GPTOSS_E2E=1 requires it)", why)
		}
		t.Skipf("skipping the openai-client end-to-end test: %s", why)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not on PATH")
	}
	if _, err := os.Stat(filepath.Join(e2eDir, "node_modules", "openai", "package.json")); err != nil {
		missing("server/e2e/node_modules is missing; run: npm ci --prefix server/e2e")
	}

	const apiKey = "e2e-test-key"
	addrFile := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serverLog := &lockedBuffer{}
	served := make(chan int, 1)
	go func() {
		served <- run(ctx, []string{"serve", "--host", "127.0.0.1", "--port", "0", "--addr-file", addrFile,
			"--cache-dir", t.TempDir(), "--api-key", apiKey, "--max-num-seqs", "16"}, serverLog, serverLog)
	}()
	stopServer := func() {
		cancel()
		select {
		case code := <-served:
			if code != 0 {
				t.Errorf("gptoss serve exited %d:\n%s", code, serverLog.String())
			}
		case <-time.After(60 * time.Second):
			t.Errorf("gptoss serve did not stop within 60s of its context ending")
		}
	}

	var addr string
	deadline := time.Now().Add(2 * time.Minute) // creating the model takes a second or two
	for addr == "" {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			addr = strings.TrimSpace(string(b))
			break
		}
		select {
		case code := <-served:
			t.Fatalf("gptoss serve exited %d before listening:\n%s", code, serverLog.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("gptoss serve did not listen within 2 minutes:\n%s", serverLog.String())
		}
	}

	nodeCtx, nodeCancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer nodeCancel()
	cmd := exec.CommandContext(nodeCtx, node, "e2e.mjs", "http://"+addr, apiKey)
	cmd.Dir = e2eDir
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	stopServer()
	if errors.Is(nodeCtx.Err(), context.DeadlineExceeded) {
		t.Fatalf("node e2e.mjs ran over 3 minutes:\n%s\nserver log:\n%s", out, tail(serverLog.String(), 4000))
	}
	if err != nil {
		t.Fatalf("node e2e.mjs: %v\n%s\nserver log:\n%s", err, failures(string(out)), tail(serverLog.String(), 4000))
	}
	t.Logf("node e2e.mjs:\n%s", summary(string(out)))
}

// lockedBuffer collects the server's log from its goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// summary keeps the TAP lines that name tests and the totals.
func summary(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "not ok ") || strings.HasPrefix(l, "# ") && !strings.HasPrefix(l, "# Subtest") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// failures keeps the failing tests' TAP blocks (their YAML diagnostics)
// and the totals; the whole output when it is not TAP.
func failures(out string) string {
	lines := strings.Split(out, "\n")
	var keep []string
	in := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "not ok "):
			in = true
		case strings.HasPrefix(l, "ok ") || strings.HasPrefix(l, "# Subtest"):
			in = false
		case strings.HasPrefix(l, "# ") || strings.HasPrefix(l, "1.."):
			in = false
			keep = append(keep, l)
			continue
		}
		if in {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return out
	}
	return strings.Join(keep, "\n")
}
