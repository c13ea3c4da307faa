package kernels

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkPoolMatVec streams a 1.2 GB BF16 matrix (the 20b unembedding's
// size; with the AVX2 kernel too on an AVX-512 machine) and 1.2 GB of
// MXFP4 experts (float32 and int8 activations) through a 2-thread pool
// at decode
// (n = 1), random data, from anonymous memory with 4 KiB pages and with MADV_HUGEPAGE:
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
		// Random bytes (BF16: finite, moderate values; MXFP4 codes: all
		// nibbles; scales below): streaming speed depends on the data, and
		// a mostly-zero buffer streams MXFP4 almost twice as fast.
		r := rand.New(rand.NewPCG(3, 3))
		for i := 0; i+8 <= len(mem); i += 8 {
			binary.LittleEndian.PutUint64(mem[i:], r.Uint64()&0x3FFF3FFF3FFF3FFF)
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
		if isa == AVX512 {
			// The AVX2 kernel on the same data, as on a CPU without AVX-512.
			p2 := NewPool(AVX2, 2)
			b.Run(fmt.Sprintf("bf16-avx2/huge=%v", huge), func(b *testing.B) {
				b.SetBytes(int64(2 * out * in))
				for b.Loop() {
					p2.MatMulBF16(dst, x, 1, mem, out, in, nil)
					p2.Run(false)
				}
			})
			p2.Close()
		}
		const rows, cols = 5760, 2880
		per := rows * cols / 2
		experts := size / (per + per/16)
		xs, y := gaussians(r, cols), make([]float32, rows*experts)
		for i := experts * per; i < len(mem); i++ {
			mem[i] = byte(116 + r.IntN(4)) // scales as in the synthetic checkpoints
		}
		// Each expert product as float32 and, with an int8 kernel, with
		// int8 activations (--int8-experts).
		add := map[string]func(e int){"mxfp4": func(e int) {
			p.MatMulMXFP4(y[e*rows:], xs, 1, mem[e*per:], mem[experts*per+e*per/16:], rows, cols, nil)
		}}
		if isa.Int8Kernel() {
			xq := make([]byte, Q8Bytes(cols))
			QuantizeQ8(xq, xs, cols)
			add["mxfp4-int8"] = func(e int) {
				p.MatMulMXFP4Q8(y[e*rows:], xq, 1, mem[e*per:], mem[experts*per+e*per/16:], rows, cols, nil)
			}
		}
		for _, kind := range []string{"mxfp4", "mxfp4-int8"} {
			product, ok := add[kind]
			if !ok {
				continue
			}
			b.Run(fmt.Sprintf("%s/huge=%v", kind, huge), func(b *testing.B) {
				b.SetBytes(int64(experts * (per + per/16)))
				for b.Loop() {
					for e := range experts {
						product(e)
					}
					p.Run(false)
				}
			})
			// As a decode step runs them: jobs of 4 random experts.
			b.Run(fmt.Sprintf("%s-4/huge=%v", kind, huge), func(b *testing.B) {
				b.SetBytes(int64(experts * (per + per/16)))
				for b.Loop() {
					for range experts / 4 {
						for range 4 {
							product(r.IntN(experts))
						}
						p.Run(false)
					}
				}
			})
		}
		p.Close()
		unix.Munmap(mem)
	}
}
