package bench

import (
	"context"
	"math"
	"testing"

	"github.com/gptoss/gptoss/kernels"
)

// TestDecodeReport runs the benchmark on the small golden checkpoint and
// checks that the byte accounting adds up: the dense bytes the backend
// counted equal the checkpoint's attention, router and unembedding sizes.
func TestDecodeReport(t *testing.T) {
	r, err := Decode(context.Background(), "../testdata/shapes", DecodeOptions{
		PromptTokens: 9, GenTokens: 5, Repeats: 2, Depth: 3, Threads: 2, ISA: kernels.Detect(), MemBWBytes: 8 << 20, Profile: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.DecodeTokS <= 0 || r.PrefillTokS <= 0 || r.MemBWGBps <= 0 || len(r.Decode.Samples) != 2 {
		t.Fatalf("missing rates: %+v", r)
	}
	b := r.BytesBreakdown
	sum := b.Attention + b.Router + b.Unembedding + b.Experts + b.KV + b.Embedding
	if math.Abs(sum-r.BytesPerToken) > 1e-6*r.BytesPerToken {
		t.Errorf("breakdown sums to %g, bytes per token %g", sum, r.BytesPerToken)
	}
	if b.Experts <= 0 || b.KV <= 0 {
		t.Errorf("experts or kv not counted: %+v", b)
	}
	var share, weights float64
	for _, p := range r.Profile {
		share += p.Share
		if p.GBps > 0 {
			weights++
		}
	}
	if len(r.Profile) == 0 || math.Abs(share-1) > 1e-6 || weights < 5 {
		t.Errorf("profile shares sum to %g with %v bandwidths: %+v", share, weights, r.Profile)
	}
	share = 0
	var moe float64
	for _, p := range r.PrefillProfile {
		share += p.Share
		if p.Op == "moe_gate_up" {
			moe = p.MsTok
		}
	}
	if math.Abs(share-1) > 1e-6 || moe <= 0 {
		t.Errorf("prefill profile shares sum to %g, gate_up %g ms: %+v", share, moe, r.PrefillProfile)
	}
	if _, err := Decode(context.Background(), "../testdata/shapes", DecodeOptions{Repeats: 1, Threads: 1}); err == nil {
		t.Error("no prompt and no gen tokens accepted")
	}
}

// TestDecodeDepth: as in llama-bench, tg is a test of its own at --depth,
// so the prompt before it changes nothing in what a decode step reads
// (the KV bytes grow with the depth alone).
func TestDecodeDepth(t *testing.T) {
	kv := func(prompt, depth int) float64 {
		t.Helper()
		r, err := Decode(context.Background(), "../testdata/shapes", DecodeOptions{
			PromptTokens: prompt, GenTokens: 4, Repeats: 1, Depth: depth, Threads: 1, ISA: kernels.Detect(), MemBWBytes: 8 << 20,
		})
		if err != nil {
			t.Fatal(err)
		}
		return r.BytesBreakdown.KV
	}
	alone, afterPrompt, deeper := kv(0, 3), kv(9, 3), kv(0, 12)
	if alone != afterPrompt {
		t.Errorf("KV bytes per decoded token: %g after a 9-token prompt, %g without: tg depends on pp", afterPrompt, alone)
	}
	if deeper <= alone {
		t.Errorf("KV bytes per decoded token: %g at depth 12, %g at depth 3", deeper, alone)
	}
}
