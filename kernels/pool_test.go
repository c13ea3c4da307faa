package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPool checks that a pool job gives, bit for bit, what single calls of
// the same level's kernels give, for every thread count: the parts split
// the rows, never a row's sum.
func TestPool(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	forEachISA(t, func(t *testing.T, isa ISA) {
		if NewPool(isa, 1) == nil {
			if isa != Generic && simdBuilt {
				t.Fatal("no pool for a SIMD level")
			}
			t.Skip("no pool for this level")
		}
		// BF16 products of several shapes and MXFP4 products sharing a job.
		type bf struct {
			n, out, in int
			x, bias    []float32
			w          []byte
		}
		var bfs []bf
		for _, sz := range [][3]int{{1, 37, 64}, {3, 100, 45}, {1, 250, 2880}} {
			b := bf{n: sz[0], out: sz[1], in: sz[2], x: gaussians(r, sz[0]*sz[2]), bias: gaussians(r, sz[1])}
			wf := gaussians(r, sz[1]*sz[2])
			b.w = make([]byte, 2*len(wf))
			for i, v := range wf {
				u := math.Float32bits(v)
				b.w[2*i], b.w[2*i+1] = byte(u>>16), byte(u>>24)
			}
			bfs = append(bfs, b)
		}
		type mx struct {
			n, rows, cols  int
			xs, bias       []float32
			blocks, scales []byte
		}
		var mxs []mx
		for _, sz := range [][3]int{{1, 48, 160}, {4, 130, 2880}, {2, 7, 32}} {
			g := sz[2] / 32
			x := gaussians(r, sz[0]*sz[2])
			m := mx{n: sz[0], rows: sz[1], cols: sz[2], xs: make([]float32, len(x)), bias: gaussians(r, sz[1]),
				blocks: randomBytes(r, sz[1]*g*16, 0, 255), scales: randomBytes(r, sz[1]*g, 118, 130)}
			SplitBlocks(m.xs, x, sz[2])
			mxs = append(mxs, m)
		}
		// Attention items: two rows of 8 heads over 2 kv-heads.
		const hd, heads, kvh, keys = 64, 8, 2, 37
		q := gaussians(r, 2*heads*hd)
		kv := gaussians(r, 2*keys*kvh*hd)
		sinks := gaussians(r, heads)
		spans := func(row int) *KeySpans {
			s := &KeySpans{Stride: kvh * hd}
			n := keys - row*5
			s.K[0], s.V[0], s.N[0] = kv[:n*kvh*hd], kv[keys*kvh*hd:keys*kvh*hd+n*kvh*hd], n
			return s
		}
		wantBF := make([][]float32, len(bfs))
		for i, b := range bfs {
			wantBF[i] = make([]float32, b.n*b.out)
			isa.MatMulBF16(wantBF[i], b.x, b.n, b.w, b.out, b.in, b.bias, 0, b.out)
		}
		wantMX := make([][]float32, len(mxs))
		for i, m := range mxs {
			wantMX[i] = make([]float32, m.n*m.rows)
			isa.MatMulMXFP4(wantMX[i], m.xs, m.n, m.blocks, m.scales, m.rows, m.cols, m.bias, 0, m.rows)
		}
		wantAttn := make([]float32, 2*heads*hd)
		for row := range 2 {
			for kv := range kvh {
				isa.Attention(wantAttn[row*heads*hd:], q[row*heads*hd:], kv*heads/kvh, (kv+1)*heads/kvh, heads/kvh, hd,
					spans(row), sinks, 0.125, make([]float32, keys))
			}
		}
		for _, threads := range []int{1, 2, 3} {
			p := NewPool(isa, threads)
			for _, chunk := range []int{0, 1, 20000, 100000} { // reuse the pool and its buffers
				p.chunkBytes = chunk
				gotBF := make([][]float32, len(bfs))
				for i, b := range bfs {
					gotBF[i] = make([]float32, b.n*b.out)
					p.MatMulBF16(gotBF[i], b.x, b.n, b.w, b.out, b.in, b.bias)
				}
				gotMX := make([][]float32, len(mxs))
				for i, m := range mxs {
					gotMX[i] = make([]float32, m.n*m.rows)
					p.MatMulMXFP4(gotMX[i], m.xs, m.n, m.blocks, m.scales, m.rows, m.cols, m.bias)
				}
				p.Run(true)
				gotAttn := make([]float32, 2*heads*hd)
				scores := make([][]float32, threads)
				for i := range scores {
					scores[i] = make([]float32, keys)
				}
				p.SetAttention(heads/kvh, hd, kvh*hd, sinks, 0.125, scores)
				for row := range 2 {
					for kv := range kvh {
						p.Attention(gotAttn[row*heads*hd:], q[row*heads*hd:], kv*heads/kvh, (kv+1)*heads/kvh, spans(row))
					}
				}
				p.Run(false)
				for i := range bfs {
					same(t, "bf16", threads, gotBF[i], wantBF[i])
				}
				for i := range mxs {
					same(t, "mxfp4", threads, gotMX[i], wantMX[i])
				}
				same(t, "attention", threads, gotAttn, wantAttn)
			}
			p.Close()
		}
	})
}

func same(t *testing.T, what string, threads int, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s, %d threads: [%d] = %g, want %g", what, threads, i, got[i], want[i])
		}
	}
}
