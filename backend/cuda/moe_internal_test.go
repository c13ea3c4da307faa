package cuda

import (
	"errors"
	"testing"

	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/loader"
)

// TestBadExpertReported: the decode MoE kernels read the expert ids on
// the device, so an id outside [0, experts) (indices that did not come
// from TopK) must come back as an error at the next read, not as a read
// outside the weights; the read after that is clean again.
func TestBadExpertReported(t *testing.T) {
	b, err := New(0)
	if err != nil {
		t.Skipf("no CUDA device: %v", err)
	}
	defer b.Close()
	const experts, k, hidden, inter = 5, 2, 64, 32
	mk := func(rows, cols int) backend.Tensor {
		groups := cols / 32
		w := loader.ExpertWeights{
			Blocks: loader.Tensor{Name: "blocks", DType: loader.U8, Shape: []int{experts, rows, groups, 16}, Data: make([]byte, experts*rows*groups*16)},
			Scales: loader.Tensor{Name: "scales", DType: loader.U8, Shape: []int{experts, rows, groups}, Data: make([]byte, experts*rows*groups)},
			Bias:   loader.Tensor{Name: "bias", DType: loader.BF16, Shape: []int{experts, rows}, Data: make([]byte, 2*experts*rows)},
		}
		x, err := b.Experts(w)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	gu, dn := mk(2*inter, hidden), mk(hidden, inter)
	x, y, w := b.NewActivations(1, hidden), b.NewActivations(1, hidden), b.NewActivations(1, k)
	idx := b.NewIndices(1, k).(*ints)
	out := make([]float32, hidden)
	act := backend.SwiGLU{Alpha: 1.702, Limit: 7}
	for _, c := range []struct {
		ids []int32
		bad bool
	}{{[]int32{0, 7}, true}, {[]int32{4, 1}, false}, {[]int32{-1, 2}, true}} {
		if err := b.ctx.CopyHtoD(idx.p, i32bytes(c.ids)); err != nil {
			t.Fatal(err)
		}
		if err := b.MoE(y, x, idx, w, gu, dn, act, 1); err != nil {
			t.Fatal(err)
		}
		err := b.ReadFloats(out, y, 1)
		if c.bad != errors.Is(err, errBadExpert) || (!c.bad && err != nil) {
			t.Errorf("ids %v: read error %v, want bad=%v", c.ids, err, c.bad)
		}
	}
}
