package model_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/backend/cpu"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/model"
)

// fixture is a golden checkpoint from ../shared/golden, copied to testdata,
// with the logits and intermediates of an exact float64 evaluation.
type fixture struct {
	name, dir, layout, expected string
}

var fixtures = []fixture{
	{"tiny", "../testdata/tiny", "hf", "../testdata/tiny-expected"},
	{"shapes", "../testdata/shapes", "hf", "../testdata/shapes-expected"},
	{"shapes-original", "../testdata/shapes", "original", "../testdata/shapes-expected"},
}

type summary struct {
	Tokens []int32 `json:"tokens"`
	Vocab  int     `json:"vocab"`
	Chunk  int     `json:"chunk"`
}

type expected struct {
	summary
	logits []float32 // [tokens, vocab]
	dir    string
}

func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func readI32(t *testing.T, path string) []int32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int32, len(b)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func load(t *testing.T, f fixture) (*model.Model, expected) {
	t.Helper()
	ck, err := loader.OpenLayout(f.dir, f.layout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := model.New(cpu.New(), ck.Config, &ck.Weights)
	if err != nil {
		t.Fatal(err)
	}
	var e expected
	b, err := os.ReadFile(filepath.Join(f.expected, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &e.summary); err != nil {
		t.Fatal(err)
	}
	e.logits = readF32(t, filepath.Join(f.expected, "logits.f32"))
	e.dir = f.expected
	if len(e.logits) != len(e.Tokens)*e.Vocab || e.Vocab != m.Config.VocabSize {
		t.Fatalf("expected logits: %d values for %d tokens × vocab %d (model vocab %d)", len(e.logits), len(e.Tokens), e.Vocab, m.Config.VocabSize)
	}
	return m, e
}

// checkLogits applies the bound of testdata/GOLDEN.md at every position:
// max |Δ| ≤ 2e-4 + 2e-5·max|expected|, and the same argmax wherever the
// expected top-2 gap exceeds ten times that bound.
func checkLogits(t *testing.T, got, want []float32, vocab int) {
	t.Helper()
	var worst float64
	for p := 0; p < len(want)/vocab; p++ {
		g, w := got[p*vocab:(p+1)*vocab], want[p*vocab:(p+1)*vocab]
		var absmax, diff float64
		for i := range w {
			absmax = math.Max(absmax, math.Abs(float64(w[i])))
			diff = math.Max(diff, math.Abs(float64(g[i]-w[i])))
		}
		bound := 2e-4 + 2e-5*absmax
		worst = math.Max(worst, diff/bound)
		if diff > bound {
			t.Errorf("position %d: max |Δlogit| %.3g exceeds %.3g", p, diff, bound)
		}
		w1, w2 := top2(w)
		if float64(w[w1]-w[w2]) > 10*bound {
			if g1, _ := top2(g); g1 != w1 {
				t.Errorf("position %d: argmax %d, want %d", p, g1, w1)
			}
		}
	}
	t.Logf("worst position uses %.1f%% of the bound", 100*worst)
}

func top2(x []float32) (int, int) {
	a, b := 0, -1
	for i := 1; i < len(x); i++ {
		switch {
		case x[i] > x[a]:
			a, b = i, a
		case b < 0 || x[i] > x[b]:
			b = i
		}
	}
	return a, b
}

func TestGoldenLogits(t *testing.T) {
	for _, f := range fixtures {
		m, e := load(t, f)
		modes := []struct {
			name  string
			chunk int
		}{{"prefill", len(e.Tokens)}, {"decode", 1}, {fmt.Sprintf("chunk=%d", e.Chunk), e.Chunk}, {"chunk=3", 3}}
		for _, mode := range modes {
			t.Run(f.name+"/"+mode.name, func(t *testing.T) {
				got, err := m.Logits(context.Background(), e.Tokens, mode.chunk, nil)
				if err != nil {
					t.Fatal(err)
				}
				checkLogits(t, got, e.logits, e.Vocab)
			})
		}
	}
}

// TestGoldenLayers checks every intermediate of a prefill against the
// float64 evaluation, so a mismatch names the step that went wrong.
func TestGoldenLayers(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			m, e := load(t, f)
			be := m.Backend()
			seen := map[string]bool{}
			trace := func(name string, x backend.Tensor, n int) {
				// q, k and v are traced for attention introspection; the
				// fixtures do not hold them.
				if strings.HasSuffix(name, "_q") || strings.HasSuffix(name, "_k") || strings.HasSuffix(name, "_v") {
					return
				}
				seen[name] = true
				path := filepath.Join(e.dir, "layers", name)
				cols := x.Shape()[1]
				if name[len(name)-4:] == "_idx" {
					got := make([]int32, n*cols)
					if err := be.ReadInts(got, x, n); err != nil {
						t.Fatal(err)
					}
					want := readI32(t, path+".i32")
					for i := range want {
						if got[i] != want[i] {
							t.Errorf("%s: row %d: experts %v, want %v", name, i/cols, got[i/cols*cols:i/cols*cols+cols], want[i/cols*cols:i/cols*cols+cols])
							return
						}
					}
					return
				}
				got := make([]float32, n*cols)
				if err := be.ReadFloats(got, x, n); err != nil {
					t.Fatal(err)
				}
				want := readF32(t, path+".f32")
				if len(want) != len(got) {
					t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
				}
				for r := range n {
					g, w := got[r*cols:(r+1)*cols], want[r*cols:(r+1)*cols]
					var absmax, diff float64
					for i := range w {
						absmax = math.Max(absmax, math.Abs(float64(w[i])))
						diff = math.Max(diff, math.Abs(float64(g[i]-w[i])))
					}
					if bound := 2e-4 + 2e-5*absmax; diff > bound {
						t.Errorf("%s: row %d: max |Δ| %.3g exceeds %.3g", name, r, diff, bound)
						return
					}
				}
			}
			if _, err := m.Logits(context.Background(), e.Tokens, len(e.Tokens), trace); err != nil {
				t.Fatal(err)
			}
			entries, err := os.ReadDir(filepath.Join(e.dir, "layers"))
			if err != nil {
				t.Fatal(err)
			}
			for _, ent := range entries {
				name := ent.Name()
				if ext := filepath.Ext(name); ext == ".f32" || ext == ".i32" {
					if !seen[name[:len(name)-4]] {
						t.Errorf("intermediate %s was never produced", name)
					}
				}
			}
		})
	}
}
