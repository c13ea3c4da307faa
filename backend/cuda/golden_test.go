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
// once as configured by default and once with the tensor-core products
// (which decide whether they can become the default).
func TestGoldenGPU(t *testing.T) {
	be := gpu(t)
	t.Run("default", func(t *testing.T) { golden(t, be) })
	be.SetTensorCores(true)
	defer be.SetTensorCores(false)
	t.Run("tensor-cores", func(t *testing.T) { golden(t, be) })
}

func golden(t *testing.T, be *cuda.Backend) {
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
				if bound := 2e-4 + 2e-5*absmax; !(diff <= bound) {
					t.Errorf("%s chunk %d position %d: max |Δlogit| %.3g exceeds %.3g", f.name, chunk, p, diff, bound)
				}
			}
		}
	}
}
