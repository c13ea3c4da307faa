package bench

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/gptoss/gptoss/backend/cuda"
	"github.com/gptoss/gptoss/kernels"
)

// TestDecodeCUDA runs the benchmark on the GPU on the small golden
// checkpoint, with and without CUDA graphs: the rates and bandwidths are
// there, the counted dense bytes equal the checkpoint's attention, router
// and unembedding sizes (the breakdown adds up), the bytes per token agree
// with the CPU backend's count (the same keys, and the experts of the
// same routing up to rare near-ties), and graphs were replayed only when
// asked for. The graph run also takes the tensor-core products. Then the
// kernel profile.
func TestDecodeCUDA(t *testing.T) {
	g, err := cuda.New(0)
	if err != nil {
		t.Skipf("no CUDA device: %v", err)
	}
	defer g.Close()
	o := DecodeOptions{PromptTokens: 9, GenTokens: 6, Repeats: 2, Depth: 3, MemBWBytes: 256 << 20, GPU: g}
	c := o
	c.GPU, c.Threads, c.ISA = nil, 2, kernels.Detect()
	want, err := Decode(context.Background(), "../testdata/shapes", c)
	if err != nil {
		t.Fatal(err)
	}
	for _, noGraphs := range []bool{false, true} {
		o.NoGraphs = noGraphs
		o.TensorCores = !noGraphs // the bytes do not depend on the product kernel
		r, err := Decode(context.Background(), "../testdata/shapes", o)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(r)
		t.Logf("graphs %v: %s", !noGraphs, js)
		if r.DecodeTokS <= 0 || r.PrefillTokS <= 0 || r.MemBWGBps <= 0 || r.PeakGBps <= 0 || r.DecodeGBps <= 0 || !strings.HasPrefix(r.Device, "cuda:0") {
			t.Fatalf("missing rates: %+v", r)
		}
		b := r.BytesBreakdown
		sum := b.Attention + b.Router + b.Unembedding + b.Experts + b.KV + b.Embedding
		if math.Abs(sum-r.BytesPerToken) > 1e-6*r.BytesPerToken {
			t.Errorf("breakdown sums to %g, bytes per token %g", sum, r.BytesPerToken)
		}
		if b.KV != want.BytesBreakdown.KV || b.Embedding != want.BytesBreakdown.Embedding ||
			math.Abs(b.Experts-want.BytesBreakdown.Experts) > 0.1*want.BytesBreakdown.Experts || b.Experts <= 0 {
			t.Errorf("counted %+v, the CPU backend %+v", b, want.BytesBreakdown)
		}
		if gs := r.Graphs; gs == nil || gs.Enabled == noGraphs || (gs.Replays > 0) == noGraphs {
			t.Errorf("graphs asked %v, ran %+v", !noGraphs, gs)
		}
	}
	// The kernel profile: every decode step runs matvec_bf16, whose
	// calls and time are there, and the graph setting comes back after.
	o.Profile, o.NoGraphs = true, false
	r, err := Decode(context.Background(), "../testdata/shapes", o)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, p := range r.Profile {
		if p.Op == "matvec_bf16" {
			found = p.MsTok > 0 && p.GBps > 0
		}
	}
	if !found || len(r.PrefillProfile) == 0 {
		t.Errorf("kernel profile without matvec_bf16 time: %+v, prefill %+v", r.Profile, r.PrefillProfile)
	}
	if !g.GraphStats().Enabled {
		t.Error("graphs stayed off after the profile")
	}
}
