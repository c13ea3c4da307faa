package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gptoss/gptoss/kernels"
)

// TestLogitsCommandGolden runs `gptoss logits` as a user would, in every
// mode and on both layouts, and checks the written file against the golden
// logits with the bound of testdata/GOLDEN.md.
func TestLogitsCommandGolden(t *testing.T) {
	cases := []struct{ model, layout, expected string }{
		{"../../testdata/tiny", "auto", "../../testdata/tiny-expected"},
		{"../../testdata/shapes", "hf", "../../testdata/shapes-expected"},
		{"../../testdata/shapes/original", "auto", "../../testdata/shapes-expected"},
	}
	for _, c := range cases {
		var sum struct {
			Tokens []int `json:"tokens"`
			Vocab  int   `json:"vocab"`
		}
		b, err := os.ReadFile(filepath.Join(c.expected, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &sum); err != nil {
			t.Fatal(err)
		}
		ids := make([]string, len(sum.Tokens))
		for i, v := range sum.Tokens {
			ids[i] = fmt.Sprint(v)
		}
		want := readFloats(t, filepath.Join(c.expected, "logits.f32"))
		for _, mode := range []string{"prefill", "decode", "chunk=5"} {
			t.Run(c.model+"/"+c.layout+"/"+mode, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "logits.f32")
				var stdout, stderr bytes.Buffer
				args := []string{"logits", "--model", c.model, "--layout", c.layout, "--tokens", strings.Join(ids, ","), "--mode", mode, "--out", out}
				if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
					t.Fatalf("exit %d: %s", code, stderr.String())
				}
				got := readFloats(t, out)
				if len(got) != len(want) {
					t.Fatalf("%d logits, want %d", len(got), len(want))
				}
				for p := 0; p < len(sum.Tokens); p++ {
					var absmax, diff float64
					for i := p * sum.Vocab; i < (p+1)*sum.Vocab; i++ {
						absmax = math.Max(absmax, math.Abs(float64(want[i])))
						diff = math.Max(diff, math.Abs(float64(got[i]-want[i])))
					}
					if bound := 2e-4 + 2e-5*absmax; diff > bound {
						t.Errorf("position %d: max |Δ| %.3g exceeds %.3g", p, diff, bound)
					}
				}
			})
		}
	}
}

func TestLogitsCommandErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"logits", "--tokens", "1", "--out", "x"}, "--model DIR is required"},
		{[]string{"logits", "--model", "../../testdata/tiny", "--tokens", "1,a", "--out", "x"}, "not a token id"},
		{[]string{"logits", "--model", "../../testdata/tiny", "--tokens", "1", "--mode", "chunk=0", "--out", "x"}, "chunk size"},
		{[]string{"logits", "--model", "../../testdata/tiny", "--tokens", "1,99999", "--out", filepath.Join(t.TempDir(), "x")}, "outside the vocabulary"},
		{[]string{"logits", "--model", t.TempDir(), "--tokens", "1", "--out", "x"}, "loader"},
		{[]string{"nosuch"}, "unknown command"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), c.args, &stdout, &stderr); code == 0 {
			t.Errorf("%v: exit 0, want an error", c.args)
		}
		if !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: stderr %q does not mention %q", c.args, stderr.String(), c.want)
		}
	}
}

func TestInspect(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"inspect", "--model", "../../testdata/shapes"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"hf layout, 3 files", "model.layers.5.mlp.experts.down_proj_blocks", "U8", "[16 96 2 16]", "bytes read per decoded token"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("inspect output lacks %q", want)
		}
	}
}

func readFloats(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24)
	}
	return out
}

// TestLogitsCPUOptions: --hugepages changes nothing in the logits, and
// --int8-experts moves them (it takes effect) while keeping the argmax of
// almost every position.
func TestLogitsCPUOptions(t *testing.T) {
	logits := func(extra ...string) []float32 {
		out := filepath.Join(t.TempDir(), "logits.f32")
		args := append([]string{"logits", "--model", "../../testdata/tiny", "--device", "cpu",
			"--tokens", "1,2,3,4,5,6,7,8,9,10,11,12", "--out", out}, extra...)
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d: %s", extra, code, stderr.String())
		}
		return readFloats(t, out)
	}
	plain, huge := logits(), logits("--hugepages")
	// The CUDA option is refused on the CPU, not ignored.
	var stdout, stderr bytes.Buffer
	args := []string{"logits", "--model", "../../testdata/tiny", "--device", "cpu", "--tokens", "1,2", "--out", "-", "--tensor-cores"}
	if code := run(context.Background(), args, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "CUDA option") {
		t.Fatalf("--tensor-cores on the CPU: exit %d, %q", code, stderr.String())
	}
	for i := range plain {
		if math.Float32bits(plain[i]) != math.Float32bits(huge[i]) {
			t.Fatalf("--hugepages: logit %d is %g, %g without", i, huge[i], plain[i])
		}
	}
	if !kernels.Detect().Int8Kernel() {
		// Refused rather than run in portable Go.
		var stdout, stderr bytes.Buffer
		args := []string{"logits", "--model", "../../testdata/tiny", "--device", "cpu", "--tokens", "1,2", "--out", "-", "--int8-experts"}
		if code := run(context.Background(), args, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "AVX2 or AVX-512") {
			t.Fatalf("--int8-experts without a SIMD int8 kernel: exit %d, %q", code, stderr.String())
		}
		return
	}
	int8 := logits("--int8-experts")
	vocab := len(plain) / 12
	moved, agree := false, 0
	for p := range 12 {
		a, b := plain[p*vocab:(p+1)*vocab], int8[p*vocab:(p+1)*vocab]
		if argmax(a) == argmax(b) {
			agree++
		}
		for i := range a {
			moved = moved || a[i] != b[i]
		}
	}
	if !moved || agree < 10 {
		t.Fatalf("--int8-experts: logits moved %v, argmax kept at %d of 12 positions", moved, agree)
	}
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
