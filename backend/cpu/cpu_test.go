package cpu_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/backend/cpu"
	"github.com/gptoss/gptoss/kernels"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/model"
)

func loadModel(t *testing.T, dir string, be *cpu.Backend) *model.Model {
	t.Helper()
	ck, err := loader.OpenLayout(dir, "hf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := model.New(be, ck.Config, &ck.Weights)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDecodeAllocations: once its buffers have grown, a one-token decode
// step allocates nothing (the KV cache of a full layer grows
// geometrically, which the average over many steps absorbs).
func TestDecodeAllocations(t *testing.T) {
	for _, c := range []struct {
		threads int
		int8    bool
	}{{1, false}, {2, false}, {2, true}} {
		threads := c.threads
		t.Run(fmt.Sprintf("threads=%d/int8=%v", threads, c.int8), func(t *testing.T) {
			be, err := cpu.NewWith(threads, kernels.Detect())
			if err != nil {
				t.Fatal(err)
			}
			be.SetInt8Experts(c.int8)
			m := loadModel(t, "../../testdata/shapes", be)
			cache, err := m.NewCache(512)
			if err != nil {
				t.Fatal(err)
			}
			st := m.NewState(8)
			logits := make([]float32, 8*m.Config.VocabSize)
			prompt := []int32{1, 2, 3, 4, 5, 6, 7, 8}
			rows := []int{7}
			b := model.Batch{Tokens: prompt, Segments: []backend.Segment{{Cache: cache, Len: 8}}, LogitRows: rows}
			if err := m.Forward(st, b, logits, nil); err != nil {
				t.Fatal(err)
			}
			token := []int32{9}
			segs := []backend.Segment{{Cache: cache, Len: 1}}
			decode := model.Batch{Tokens: token, Segments: segs, LogitRows: []int{0}}
			allocs := testing.AllocsPerRun(200, func() {
				segs[0].Pos = cache.Len()
				if err := m.Forward(st, decode, logits, nil); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("decode step allocates %v times", allocs)
			}
		})
	}
}

// TestLevelsAndThreadsAgree runs the golden checkpoint at every SIMD level
// and several thread counts (odd ones leave uneven row splits) and checks
// the logits against the portable single-thread backend.
func TestLevelsAndThreadsAgree(t *testing.T) {
	tokens := []int32{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4}
	ref, err := cpu.NewWith(1, kernels.Generic)
	if err != nil {
		t.Fatal(err)
	}
	want, err := loadModel(t, "../../testdata/shapes", ref).Logits(context.Background(), tokens, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, isa := range kernels.Supported() {
		for _, threads := range []int{1, 2, 3} {
			t.Run(fmt.Sprintf("%v/threads=%d", isa, threads), func(t *testing.T) {
				be, err := cpu.NewWith(threads, isa)
				if err != nil {
					t.Fatal(err)
				}
				m := loadModel(t, "../../testdata/shapes", be)
				for _, chunk := range []int{1, 7, len(tokens)} {
					got, err := m.Logits(context.Background(), tokens, chunk, nil)
					if err != nil {
						t.Fatal(err)
					}
					var absmax, diff float64
					for i := range want {
						absmax = math.Max(absmax, math.Abs(float64(want[i])))
						diff = math.Max(diff, math.Abs(float64(got[i]-want[i])))
					}
					if bound := 1e-4 + 1e-5*absmax; diff > bound {
						t.Errorf("chunk %d: max |Δlogit| %.3g exceeds %.3g", chunk, diff, bound)
					}
				}
			})
		}
	}
}

func TestNewWithRejects(t *testing.T) {
	if _, err := cpu.NewWith(0, kernels.Generic); err == nil {
		t.Error("0 threads accepted")
	}
	if _, err := cpu.NewWith(1, kernels.ISA(99)); err == nil {
		t.Error("unknown ISA accepted")
	}
}

// TestHugePages: weights copied to huge pages give bit-identical logits to
// weights used in place, and Close frees them.
func TestHugePages(t *testing.T) {
	tokens := []int32{3, 1, 4, 1, 5, 9, 2, 6}
	var logits [2][]float32
	for i, huge := range []bool{false, true} {
		be, err := cpu.NewWith(2, kernels.Detect())
		if err != nil {
			t.Fatal(err)
		}
		be.SetHugePages(huge)
		if logits[i], err = loadModel(t, "../../testdata/shapes", be).Logits(context.Background(), tokens, 3, nil); err != nil {
			t.Fatal(err)
		}
		be.Close()
	}
	for i := range logits[0] {
		if math.Float32bits(logits[0][i]) != math.Float32bits(logits[1][i]) {
			t.Fatalf("logit %d: %g with huge pages, %g in place", i, logits[1][i], logits[0][i])
		}
	}
}
