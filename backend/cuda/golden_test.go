package cuda_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gptoss/gptoss/backend/cuda"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/model"
)

// TestGoldenGPU runs the golden fixtures (testdata/GOLDEN.md) end to end on
// the GPU, in prefill, decode and chunked modes, with the bound the CPU
// backend meets: max |Δlogit| ≤ 2e-4 + 2e-5·max|expected| per position;
// by default (CUDA graphs on), kernel by kernel, and with the opt-in
// tensor-core products, whose split-BF16 activations carry their own
// stated bound: four times the default one.
func TestGoldenGPU(t *testing.T) {
	be := gpu(t)
	t.Run("default", func(t *testing.T) { golden(t, be, 1) })
	if err := be.SetGraphs(false); err != nil {
		t.Fatal(err)
	}
	t.Run("no-graphs", func(t *testing.T) { golden(t, be, 1) })
	if err := be.SetGraphs(true); err != nil {
		t.Fatal(err)
	}
	be.SetTensorCores(true)
	defer be.SetTensorCores(false)
	t.Run("tensor-cores", func(t *testing.T) { golden(t, be, 4) })
}

// golden checks every fixture with the default bound times factor and
// logs the largest share of its bound any position used.
func golden(t *testing.T, be *cuda.Backend, factor float64) {
	worst := 0.0
	for _, f := range []struct{ name, dir, layout, expected string }{
		{"tiny", "../../testdata/tiny", "hf", "../../testdata/tiny-expected"},
		{"shapes", "../../testdata/shapes", "hf", "../../testdata/shapes-expected"},
		{"shapes-original", "../../testdata/shapes", "original", "../../testdata/shapes-expected"},
	} {
		ck, err := loader.OpenLayout(f.dir, f.layout)
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		m, err := model.New(be, ck.Config, &ck.Weights)
		if err != nil {
			t.Fatal(err)
		}
		var sum struct {
			Tokens []int32 `json:"tokens"`
			Vocab  int     `json:"vocab"`
			Chunk  int     `json:"chunk"`
		}
		b, err := os.ReadFile(filepath.Join(f.expected, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &sum); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(f.expected, "logits.f32"))
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float32, len(raw)/4)
		for i := range want {
			want[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		for _, chunk := range []int{len(sum.Tokens), 1, sum.Chunk, 3} {
			got, err := m.Logits(context.Background(), sum.Tokens, chunk, nil)
			if err != nil {
				t.Fatalf("%s chunk %d: %v", f.name, chunk, err)
			}
			for p := range len(want) / sum.Vocab {
				g, w := got[p*sum.Vocab:(p+1)*sum.Vocab], want[p*sum.Vocab:(p+1)*sum.Vocab]
				var absmax, diff float64
				for i := range w {
					absmax = math.Max(absmax, math.Abs(float64(w[i])))
					diff = math.Max(diff, math.Abs(float64(g[i]-w[i])))
				}
				bound := factor * (2e-4 + 2e-5*absmax)
				worst = math.Max(worst, diff/bound)
				if !(diff <= bound) {
					t.Errorf("%s chunk %d position %d: max |Δlogit| %.3g exceeds %.3g", f.name, chunk, p, diff, bound)
				}
			}
		}
	}
	t.Logf("largest share of the bound used: %.0f%% (bound × %g)", 100*worst, factor)
}
