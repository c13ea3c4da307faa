package main

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeDrainsOnShutdown: when serve's context ends (SIGTERM or
// SIGINT in main), a streaming request already in flight runs to its end
// and the command returns cleanly; new connections are refused.
func TestServeDrainsOnShutdown(t *testing.T) {
	addrFile := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &lockedBuffer{}
	served := make(chan int, 1)
	go func() {
		served <- run(ctx, []string{"serve", "--port", "0", "--addr-file", addrFile, "--cache-dir", t.TempDir()}, log, log)
	}()
	var addr string
	for deadline := time.Now().Add(2 * time.Minute); addr == ""; {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			addr = string(b)
		} else if time.Now().After(deadline) {
			t.Fatalf("serve did not listen:\n%s", log.String())
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	resp, err := http.Post("http://"+addr+"/v1/completions", "application/json",
		strings.NewReader(`{"prompt":"hello","max_tokens":64,"ignore_eos":true,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() {
		t.Fatal("no first event")
	}
	cancel() // what SIGTERM does in main
	var chunks int
	var done bool
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "data: ") {
			chunks++
		}
		done = done || line == "data: [DONE]"
	}
	if !done || chunks < 60 {
		t.Fatalf("the in-flight stream was cut: %d more events, [DONE] %v\n%s", chunks, done, log.String())
	}
	select {
	case code := <-served:
		if code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, log.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("serve did not return after draining")
	}
	if _, err := http.Get("http://" + addr + "/health"); err == nil {
		t.Fatal("a new connection was accepted after shutdown")
	}
	if !strings.Contains(log.String(), "draining") {
		t.Fatalf("no drain in the log:\n%s", log.String())
	}
}
