package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchGGUFCommand: `gptoss bench gguf` writes the file (mode 0644, no
// temporary left beside it), and refuses what it cannot do without
// leaving a partial file.
func TestBenchGGUFCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "shapes.gguf")
	code, stdout, errs := runCmd(t, "bench", "gguf", "--model", "../../testdata/shapes", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(stdout, "llama-bench -m "+out) {
		t.Errorf("output: %q", stdout)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("GGUF\x03\x00\x00\x00")) {
		t.Errorf("file starts %q", b[:8])
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v", st.Mode(), err)
	}
	for _, args := range [][]string{
		{"bench", "gguf", "--model", "../../testdata/shapes"},                                              // no --out
		{"bench", "gguf", "--model", filepath.Join(dir, "missing"), "--out", filepath.Join(dir, "x.gguf")}, // no checkpoint
		{"bench", "gguf", "--model", "../../testdata/shapes", "--device", "cpu", "--out", filepath.Join(dir, "y.gguf")},
	} {
		if code, _, errs := runCmd(t, args...); code == 0 || errs == "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only shapes.gguf", len(entries))
	}
}
