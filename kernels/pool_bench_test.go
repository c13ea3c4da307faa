package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkPoolMatVec streams a 1.2 GB BF16 matrix (the 20b unembedding's
// size) and 1.2 GB of MXFP4 experts through a 2-thread pool at decode
// (n = 1), from anonymous memory with 4 KiB pages and with MADV_HUGEPAGE:
// the rate the decode's weight streaming can reach.
func BenchmarkPoolMatVec(b *testing.B) {
	isa := Detect()
	if isa == Generic {
		b.Skip("no SIMD level")
	}
	const size = 1200 << 20
	for _, huge := range []bool{false, true} {
		mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			b.Fatal(err)
		}
		advice := unix.MADV_NOHUGEPAGE
		if huge {
			advice = unix.MADV_HUGEPAGE
		}
		if err := unix.Madvise(mem, advice); err != nil {
			b.Fatal(err)
		}
		r := rand.New(rand.NewPCG(3, 3))
		for i := 0; i < len(mem); i += 4096 {
			mem[i] = byte(r.Uint32())
		}
		for i := 1; i < len(mem); i += 2 {
			mem[i] &= 0x3F
		}
		p := NewPool(isa, 2)
		const in = 2880
		out := size / 2 / in
		x, dst := gaussians(r, in), make([]float32, out)
		b.Run(fmt.Sprintf("bf16/huge=%v", huge), func(b *testing.B) {
			b.SetBytes(int64(2 * out * in))
			for b.Loop() {
				p.MatMulBF16(dst, x, 1, mem, out, in, nil)
				p.Run(false)
			}
		})
		const rows, cols = 5760, 2880
		per := rows * cols / 2
		experts := size / (per + per/16)
		xs, y := gaussians(r, cols), make([]float32, rows*experts)
		b.Run(fmt.Sprintf("mxfp4/huge=%v", huge), func(b *testing.B) {
			b.SetBytes(int64(experts * (per + per/16)))
			for b.Loop() {
				for e := range experts {
					p.MatMulMXFP4(y[e*rows:], xs, 1, mem[e*per:], mem[experts*per+e*per/16:], rows, cols, nil)
				}
				p.Run(false)
			}
		})
		// As a decode step runs them: jobs of 4 random experts.
		b.Run(fmt.Sprintf("mxfp4-4/huge=%v", huge), func(b *testing.B) {
			b.SetBytes(int64(experts * (per + per/16)))
			for b.Loop() {
				for range experts / 4 {
					for range 4 {
						e := r.IntN(experts)
						p.MatMulMXFP4(y[e*rows:], xs, 1, mem[e*per:], mem[experts*per+e*per/16:], rows, cols, nil)
					}
					p.Run(false)
				}
			}
		})
		p.Close()
		unix.Munmap(mem)
	}
}
