package cuda_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/backend/cpu"
	"github.com/gptoss/gptoss/backend/cuda"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/model"
)

// tinyModel binds the golden tiny fixture to a backend and returns its
// token sequence (whose every position has a clear router margin, so both
// backends select the same experts).
func tinyModel(t *testing.T, be backend.Backend) (*model.Model, []int32) {
	t.Helper()
	ck, err := loader.OpenLayout("../../testdata/tiny", "hf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := model.New(be, ck.Config, &ck.Weights)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("../../testdata/tiny-expected", "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Tokens []int32 `json:"tokens"`
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	return m, sum.Tokens
}

// decodeBatch prefills three prefixes of tokens (3, 5 and 8 long) in one
// batch, then decodes all three together, one row each, for 12 steps,
// feeding the fixture's next tokens. It returns every row's logits of
// every step, prefill's last rows included.
func decodeBatch(t *testing.T, m *model.Model, tokens []int32) [][]float32 {
	t.Helper()
	lens := []int{3, 5, 8}
	vocab := m.Config.VocabSize
	st := m.NewState(16)
	out := make([]float32, 3*vocab)
	var caches []backend.KVCache
	var segs []backend.Segment
	var batch []int32
	var last []int
	for _, l := range lens {
		c, err := m.NewCache(64)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Free)
		caches = append(caches, c)
		segs = append(segs, backend.Segment{Cache: c, Row: len(batch), Pos: 0, Len: l})
		batch = append(batch, tokens[:l]...)
		last = append(last, len(batch)-1)
	}
	var got [][]float32
	forward := func() {
		if err := m.Forward(st, model.Batch{Tokens: batch, Segments: segs, LogitRows: last}, out, nil); err != nil {
			t.Fatal(err)
		}
		for i := range last {
			got = append(got, append([]float32(nil), out[i*vocab:(i+1)*vocab]...))
		}
	}
	forward()
	for range 12 {
		batch, segs, last = batch[:0], segs[:0], last[:0]
		for i, c := range caches {
			p := c.Len()
			segs = append(segs, backend.Segment{Cache: c, Row: i, Pos: p, Len: 1})
			batch = append(batch, tokens[p])
			last = append(last, i)
		}
		forward()
	}
	return got
}

// TestGraphsMatchEager decodes the tiny fixture token by token, and three
// sequences together, once with CUDA graphs and once kernel by kernel.
// The logits must be identical bit for bit (the same kernels run with the
// same arguments), graphs must really have been replayed in the first
// run and not at all in the second, and the batched rows must match the
// CPU backend within the golden bound.
func TestGraphsMatchEager(t *testing.T) {
	be := gpu(t)
	m, tokens := tinyModel(t, be)
	run := func(graphs bool) ([]float32, [][]float32, cuda.GraphStats) {
		if err := be.SetGraphs(graphs); err != nil {
			t.Fatal(err)
		}
		before := be.GraphStats()
		single, err := m.Logits(context.Background(), tokens, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		batch := decodeBatch(t, m, tokens)
		return single, batch, be.GraphStats().Since(before)
	}
	gs, gb, gst := run(true)
	es, eb, est := run(false)
	t.Logf("graphs on: %+v; off: %+v", gst, est)
	if gst.Disabled != "" {
		t.Fatalf("graphs were turned off: %s", gst.Disabled)
	}
	// 40 single decode steps and 12 batched ones: all but the first two
	// of each shape (eager, then capture) replay.
	if gst.Captures < 2 || gst.Replays < 40 {
		t.Errorf("graphs on: %d captures, %d replays; want ≥ 2 and ≥ 40", gst.Captures, gst.Replays)
	}
	if est.Captures != 0 || est.Replays != 0 {
		t.Errorf("graphs off: %d captures, %d replays", est.Captures, est.Replays)
	}
	for i := range gs {
		if math.Float32bits(gs[i]) != math.Float32bits(es[i]) {
			t.Fatalf("single decode: logit %d is %g with graphs, %g without", i, gs[i], es[i])
		}
	}
	for r := range gb {
		for i := range gb[r] {
			if math.Float32bits(gb[r][i]) != math.Float32bits(eb[r][i]) {
				t.Fatalf("batched decode row %d: logit %d is %g with graphs, %g without", r, i, gb[r][i], eb[r][i])
			}
		}
	}
	cm, _ := tinyModel(t, cpu.New())
	cb := decodeBatch(t, cm, tokens)
	for r := range cb {
		var absmax, diff float64
		for i := range cb[r] {
			absmax = math.Max(absmax, math.Abs(float64(cb[r][i])))
			diff = math.Max(diff, math.Abs(float64(gb[r][i]-cb[r][i])))
		}
		if bound := 2e-4 + 2e-5*absmax; !(diff <= bound) {
			t.Errorf("batched decode row %d: max |Δlogit| vs CPU %.3g exceeds %.3g", r, diff, bound)
		}
	}
}

// TestStatsMatchCPU: the bytes the CUDA backend counts (the matrices and
// biases on the host, the selected experts on the device in decode and on
// the host in the grouped prefill path) equal the CPU backend's counts for
// the same batches.
func TestStatsMatchCPU(t *testing.T) {
	be := gpu(t)
	m, tokens := tinyModel(t, be)
	c := cpu.New()
	cm, _ := tinyModel(t, c)
	if err := be.ResetStats(); err != nil {
		t.Fatal(err)
	}
	c.ResetStats()
	decodeBatch(t, m, tokens)
	decodeBatch(t, cm, tokens)
	g, err := be.Stats()
	if err != nil {
		t.Fatal(err)
	}
	w := c.Stats()
	t.Logf("cuda %+v, cpu %+v", g, w)
	if g.Dense != w.Dense || g.Experts != w.Experts || g.KV != w.KV || g.Embed != w.Embed || g.Experts == 0 {
		t.Errorf("cuda counted %+v, cpu %+v", g, w)
	}
}

// TestReadBandwidth: the read-bandwidth kernel reports a positive rate
// no higher than the theoretical peak from the device attributes (with
// 10% slack for clock rounding); a rate above it would mean the loads
// were optimised away or served from cache.
func TestReadBandwidth(t *testing.T) {
	be := gpu(t)
	bw, err := be.ReadBandwidth(1<<30, 3)
	if err != nil {
		t.Fatal(err)
	}
	peak := be.Device().BandwidthGBs()
	t.Logf("%s: read %.0f GB/s, theoretical %.0f GB/s (%.0f%%)", be.Device().Name, bw, peak, 100*bw/peak)
	if !(bw > 0 && bw <= 1.1*peak) {
		t.Errorf("read bandwidth %.1f GB/s outside (0, 1.1 × %.1f]", bw, peak)
	}
}
