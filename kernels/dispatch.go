package kernels

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/gptoss/gptoss/mxfp4"
)

// Read-only tables shared with the C kernels: the 16 E2M1 values and the
// 256 E8M0 scales, both exactly as the mxfp4 package decodes them.
var (
	e2m1Table  = func() (t [16]float32) { fillTable(t[:], func(i int) float32 { return mxfp4.Value(uint8(i)) }); return }()
	scaleTable = func() (t [256]float32) { fillTable(t[:], func(i int) float32 { return mxfp4.Scale(uint8(i)) }); return }()
)

func fillTable(t []float32, f func(int) float32) {
	for i := range t {
		t[i] = f(i)
	}
}

// checkRange panics on a kernel call that would read or write outside its
// slices: these are programming errors, and C code would not notice them.
func checkRange(op string, ok bool, lo, hi, rows int) {
	if !ok || lo < 0 || hi > rows || lo > hi {
		panic(fmt.Sprintf("kernels: %s: slices too short or rows [%d, %d) outside [0, %d)", op, lo, hi, rows))
	}
}

// MatMulBF16 is MatMulBF16 (the package function) restricted to the
// outputs [lo, hi): dst[r·out+o] = Σ_i x[r·in+i]·W[o·in+i] + bias[o] for
// r < n. Threads split a matrix by giving each its own range of rows, so
// each weight row is read by one thread only.
func (isa ISA) MatMulBF16(dst, x []float32, n int, w []byte, out, in int, bias []float32, lo, hi int) {
	checkRange("MatMulBF16", bf16OK(dst, x, n, w, out, in, bias), lo, hi, out)
	if lo == hi {
		return
	}
	if isa == Generic {
		matMulBF16Rows(dst, x, n, w, out, in, bias, lo, hi)
		return
	}
	simdMatMulBF16(isa, dst, x, n, w, out, in, bias, lo, hi)
}

func bf16OK(dst, x []float32, n int, w []byte, out, in int, bias []float32) bool {
	return n > 0 && len(dst) >= n*out && len(x) >= n*in && len(w) >= 2*out*in && (bias == nil || len(bias) >= out)
}

func matMulBF16Rows(dst, x []float32, n int, w []byte, out, in int, bias []float32, lo, hi int) {
	for o := lo; o < hi; o++ {
		wr := w[o*in*2 : (o+1)*in*2]
		var b float32
		if bias != nil {
			b = bias[o]
		}
		for r := range n {
			xr := x[r*in : (r+1)*in]
			var s0, s1 float32
			i := 0
			for ; i+2 <= in; i += 2 {
				s0 += math.Float32frombits(uint32(binary.LittleEndian.Uint16(wr[2*i:]))<<16) * xr[i]
				s1 += math.Float32frombits(uint32(binary.LittleEndian.Uint16(wr[2*i+2:]))<<16) * xr[i+1]
			}
			if i < in {
				s0 += math.Float32frombits(uint32(binary.LittleEndian.Uint16(wr[2*i:]))<<16) * xr[i]
			}
			dst[r*out+o] = s0 + s1 + b
		}
	}
}

// SplitBlocks copies the rows of x (len(x)/cols rows of cols, a multiple
// of 32) to dst in the chunk order the MXFP4 kernels read: per chunk of 4
// blocks (128 columns; the last chunk of a row may have nb < 4 blocks and
// L = 4·nb lanes instead of 16), position k·L + i holds the column whose
// code is nibble k of 32-bit lane i of the chunk's code bytes: block i/4,
// byte 4·(i%4) + k/2, the low nibble (even column) for even k. A kernel
// then gets a chunk's 8 weight vectors from one 64-byte load by shifts,
// with x in matching order. A part of a row that starts at a multiple of
// 128 columns and runs to the row's end or another such multiple may be
// copied on its own, as a row of its own length.
func SplitBlocks(dst, x []float32, cols int) {
	dst = dst[:len(x)]
	if cols <= 0 {
		return
	}
	for r := 0; r+cols <= len(x); r += cols {
		for c := 0; c+mxfp4.BlockSize <= cols; c += 4 * mxfp4.BlockSize {
			lanes := 4 * min(4, (cols-c)/mxfp4.BlockSize)
			d, s := dst[r+c:], x[r+c:]
			for i := range lanes {
				for k := range 8 {
					d[k*lanes+i] = s[(i/4)*mxfp4.BlockSize+2*(4*(i%4)+k/2)+k%2]
				}
			}
		}
	}
}

// MatMulMXFP4 sets dst[t·rows+o] = Σ_c W[o][c]·x[t][c] + bias[o] for the
// outputs o in [lo, hi) and the n rows of x, given as xs = SplitBlocks(x).
// W is rows × cols in MXFP4 (blocks [rows][cols/32][16], scales
// [rows][cols/32]); bias may be nil. With n > 1 each weight block is
// decoded once and applied to every row of x: the grouped product of all
// tokens routed to one expert, which reads that expert once per batch.
func (isa ISA) MatMulMXFP4(dst, xs []float32, n int, blocks, scales []byte, rows, cols int, bias []float32, lo, hi int) {
	checkRange("MatMulMXFP4", mxfp4OK(dst, xs, n, blocks, scales, rows, cols, bias), lo, hi, rows)
	if lo == hi {
		return
	}
	if isa == Generic {
		matMulMXFP4Rows(dst, xs, n, blocks, scales, rows, cols, bias, lo, hi)
		return
	}
	simdMatMulMXFP4(isa, dst, xs, n, blocks, scales, rows, cols, bias, lo, hi)
}

func mxfp4OK(dst, xs []float32, n int, blocks, scales []byte, rows, cols int, bias []float32) bool {
	g := cols / mxfp4.BlockSize
	return n > 0 && cols%mxfp4.BlockSize == 0 && len(dst) >= n*rows && len(xs) >= n*cols &&
		len(blocks) >= rows*g*mxfp4.BlockBytes && len(scales) >= rows*g && (bias == nil || len(bias) >= rows)
}

func matMulMXFP4Rows(dst, xs []float32, n int, blocks, scales []byte, rows, cols int, bias []float32, lo, hi int) {
	groups := cols / mxfp4.BlockSize
	for o := lo; o < hi; o++ {
		var b float32
		if bias != nil {
			b = bias[o]
		}
		for t := range n {
			x := xs[t*cols : (t+1)*cols]
			var acc float32
			for g := range groups {
				blk := blocks[(o*groups+g)*mxfp4.BlockBytes : (o*groups+g+1)*mxfp4.BlockBytes]
				// x of the block's chunk in SplitBlocks order.
				lanes, lane0 := 4*min(4, groups-g/4*4), 4*(g%4)
				xc := x[g/4*4*mxfp4.BlockSize:]
				var s0, s1 float32
				for j, c := range blk {
					i, k := lane0+j/4, 2*(j%4)
					s0 += e2m1Table[c&0x0F] * xc[k*lanes+i]
					s1 += e2m1Table[c>>4] * xc[(k+1)*lanes+i]
				}
				acc += (s0 + s1) * scaleTable[scales[o*groups+g]]
			}
			dst[t*rows+o] = acc + b
		}
	}
}

// KeySpans are the keys and values one query attends to, as up to three
// runs of consecutive rows of Stride floats (kv-head j at offset j·hd):
// the older and newer parts of a ring buffer that wrapped, then the
// batch's own rows. Run i has N[i] rows starting at K[i][0] and V[i][0].
type KeySpans struct {
	K, V   [3][]float32
	N      [3]int
	Stride int
}

// Total is the number of keys in all runs.
func (s *KeySpans) Total() int { return s.N[0] + s.N[1] + s.N[2] }

// Attention computes softmax-with-sink attention (spec §5 d, e) of query
// heads [h0, h1) of one row q (heads of hd back to back; head h reads
// kv-head h/group) and writes them to out at the same offsets. scores is
// scratch of at least spans.Total() floats.
func (isa ISA) Attention(out, q []float32, h0, h1, group, hd int, spans *KeySpans, sinks []float32, scale float32, scores []float32) {
	ok := attentionOK(out, q, h0, h1, group, hd, spans, sinks) && len(scores) >= spans.Total()
	checkRange("Attention", ok, h0, h1, len(sinks))
	if isa == Generic {
		attentionHeads(out, q, h0, h1, group, hd, spans, sinks, scale, scores)
		return
	}
	simdAttention(isa, out, q, h0, h1, group, hd, spans, sinks, scale, scores)
}

func attentionOK(out, q []float32, h0, h1, group, hd int, spans *KeySpans, sinks []float32) bool {
	ok := group > 0 && len(out) >= h1*hd && len(q) >= h1*hd && len(sinks) >= h1
	for i, n := range spans.N {
		ok = ok && n >= 0 && (n == 0 || len(spans.K[i]) >= (n-1)*spans.Stride+(h1-1)/group*hd+hd && len(spans.V[i]) >= (n-1)*spans.Stride+(h1-1)/group*hd+hd)
	}
	return ok
}

// attentionHeads is the Go version of Attention, the arithmetic of
// attention.SinkHead over spans instead of a slice of rows.
func attentionHeads(out, q []float32, h0, h1, group, hd int, s *KeySpans, sinks []float32, scale float32, scores []float32) {
	for h := h0; h < h1; h++ {
		qh, off := q[h*hd:(h+1)*hd], (h/group)*hd
		m := sinks[h]
		u := 0
		for r := range 3 {
			for i := range s.N[r] {
				k := s.K[r][i*s.Stride+off : i*s.Stride+off+hd]
				sc := Dot(qh, k) * scale
				scores[u] = sc
				m = max(m, sc)
				u++
			}
		}
		denom := math.Exp(float64(sinks[h] - m))
		for i := range u {
			e := math.Exp(float64(scores[i] - m))
			scores[i] = float32(e)
			denom += e
		}
		oh := out[h*hd : (h+1)*hd]
		clear(oh)
		inv := float32(1 / denom)
		u = 0
		for r := range 3 {
			for i := range s.N[r] {
				v := s.V[r][i*s.Stride+off : i*s.Stride+off+hd]
				w := scores[u] * inv
				for j, vj := range v {
					oh[j] += w * vj
				}
				u++
			}
		}
	}
}

// SwiGLU is the package function SwiGLU, vectorised on SIMD levels (with
// an exp accurate to a few ulp instead of float64 math.Exp).
func (isa ISA) SwiGLU(act, gateUp []float32, alpha, limit float32) {
	checkRange("SwiGLU", len(gateUp) >= 2*len(act), 0, 0, 0)
	if isa == Generic || len(act) == 0 {
		SwiGLU(act, gateUp, alpha, limit)
		return
	}
	simdSwiGLU(isa, act, gateUp, alpha, limit)
}

// ReadStream reads every byte of b and returns their XOR folded to 64
// bits (so the reads cannot be optimised away): the memory-bandwidth probe.
func (isa ISA) ReadStream(b []byte) uint64 {
	if isa == Generic || len(b) == 0 {
		return readStream(b)
	}
	return simdReadStream(isa, b)
}

func readStream(b []byte) uint64 {
	var a0, a1, a2, a3 uint64
	i := 0
	for ; i+32 <= len(b); i += 32 {
		a0 ^= binary.LittleEndian.Uint64(b[i:])
		a1 ^= binary.LittleEndian.Uint64(b[i+8:])
		a2 ^= binary.LittleEndian.Uint64(b[i+16:])
		a3 ^= binary.LittleEndian.Uint64(b[i+24:])
	}
	s := a0 ^ a1 ^ a2 ^ a3
	for ; i < len(b); i++ {
		s ^= uint64(b[i])
	}
	return s
}
