package cpu_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/backend/cpu"
	"github.com/gptoss/gptoss/kernels"
	"github.com/gptoss/gptoss/loader"
)

func bf16Tensor(r *rand.Rand, shape ...int) loader.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	b := make([]byte, 2*n)
	for i := range n {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(math.Float32bits(float32(r.NormFloat64()))>>16))
	}
	return loader.Tensor{Name: fmt.Sprintf("w%v", shape), DType: loader.BF16, Shape: shape, Data: b}
}

// linearOnly hides the backend's Linear3, so Linear3Of falls back to
// three Linear calls.
type linearOnly struct{ backend.Backend }

// TestLinear3: the three products as one op give the bits of three Linear
// calls at every level and thread count, a nil bias included, and a bad
// operand is an error.
func TestLinear3(t *testing.T) {
	const in = 200
	outs := [3]int{96, 17, 33}
	for _, isa := range kernels.Supported() {
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("%v/threads=%d", isa, threads), func(t *testing.T) {
				be, err := cpu.NewWith(threads, isa)
				if err != nil {
					t.Fatal(err)
				}
				defer be.Close()
				r := rand.New(rand.NewPCG(7, 1))
				var w, bias, one, three [3]backend.Tensor
				for i, out := range outs {
					if w[i], err = be.Weight(bf16Tensor(r, out, in)); err != nil {
						t.Fatal(err)
					}
					if i != 1 { // the middle product has no bias
						if bias[i], err = be.Weight(bf16Tensor(r, out)); err != nil {
							t.Fatal(err)
						}
					}
					one[i], three[i] = be.NewActivations(5, out), be.NewActivations(5, out)
				}
				// x: five rows of a random table, through Embed.
				table, err := be.Weight(bf16Tensor(r, 5, in))
				if err != nil {
					t.Fatal(err)
				}
				x := be.NewActivations(5, in)
				if err := be.Embed(x, table, []int32{0, 1, 2, 3, 4}); err != nil {
					t.Fatal(err)
				}
				if err := backend.Linear3Of(be, x, 4, one, w, bias); err != nil {
					t.Fatal(err)
				}
				if err := backend.Linear3Of(linearOnly{be}, x, 4, three, w, bias); err != nil {
					t.Fatal(err)
				}
				for i, out := range outs {
					a, b := make([]float32, 4*out), make([]float32, 4*out)
					if err := be.ReadFloats(a, one[i], 4); err != nil {
						t.Fatal(err)
					}
					if err := be.ReadFloats(b, three[i], 4); err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(a, b) {
						t.Fatalf("product %d: Linear3 and three Linear calls differ", i)
					}
				}
				bad := three
				bad[2] = be.NewActivations(5, outs[2]+1)
				if err := be.Linear3(x, 4, bad, w, bias); err == nil {
					t.Fatal("Linear3 with a destination of the wrong width: no error")
				}
			})
		}
	}
}
