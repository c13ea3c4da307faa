package cpu

import (
	"fmt"

	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/kernels"
	"github.com/gptoss/gptoss/mxfp4"
)

// MoE implements backend.Backend. The batch's (token, expert) pairs are
// grouped by expert (a counting sort into slots), so each selected
// expert's weights are read once per batch however many tokens chose it.
// Three pool runs: gather the inputs; gate_up with the SwiGLU; down with
// the weighted sum. Threads split every expert's output rows, so each
// reads a disjoint part of the weights and the work stays balanced.
func (b *Backend) MoE(dst, x, idx, weights, gateUp, down backend.Tensor, act backend.SwiGLU, n int) error {
	d, err := as[*floats]("moe", dst)
	if err != nil {
		return err
	}
	xt, err := as[*floats]("moe", x)
	if err != nil {
		return err
	}
	it, err := as[*ints]("moe", idx)
	if err != nil {
		return err
	}
	wt, err := as[*floats]("moe", weights)
	if err != nil {
		return err
	}
	gu, err := as[*experts]("moe", gateUp)
	if err != nil {
		return err
	}
	dn, err := as[*experts]("moe", down)
	if err != nil {
		return err
	}
	if err := backend.CheckMoE(n, d.dims(), xt.dims(), it.dims(), wt.dims(), gu.shape, dn.shape); err != nil {
		return shapeErr(err)
	}
	ne, guRows, guCols := gu.shape[0], gu.shape[1], gu.shape[2]*mxfp4.BlockSize
	dnRows, dnCols := dn.shape[1], dn.shape[2]*mxfp4.BlockSize
	t := &b.moe
	k := it.cols
	slots := n * k
	// Counting sort of the pairs by expert: offset[e] is expert e's first
	// slot, slotOf[r·k+j] the slot of row r's j-th choice.
	if cap(t.offset) < ne+1 {
		t.offset = make([]int, ne+1)
	}
	t.offset = t.offset[:ne+1]
	clear(t.offset)
	for _, e := range it.data[:slots] {
		if e < 0 || int(e) >= ne {
			return fmt.Errorf("cpu: moe: expert %d outside [0, %d)", e, ne)
		}
		t.offset[e+1]++
	}
	for e := range ne {
		t.offset[e+1] += t.offset[e]
	}
	if cap(t.slotOf) < slots {
		t.slotOf = make([]int32, slots, slots+slots/2)
		t.rowOf = make([]int32, slots, slots+slots/2)
	}
	t.slotOf, t.rowOf = t.slotOf[:slots], t.rowOf[:slots]
	next := t.scratchInts(ne)
	copy(next, t.offset[:ne])
	for p, e := range it.data[:slots] {
		s := next[e]
		next[e]++
		t.slotOf[p], t.rowOf[s] = int32(s), int32(p/k)
	}
	t.xs = grow(t.xs, slots*guCols)
	t.hidden = grow(t.hidden, slots*guRows)
	t.act = grow(t.act, slots*dnCols)
	t.actSplit = grow(t.actSplit, slots*dnCols)
	t.y = grow(t.y, slots*dnRows)
	for e := range ne {
		if t.offset[e+1] > t.offset[e] {
			b.stats.Experts += gu.expertBytes() + dn.expertBytes()
		}
	}
	t.isa, t.gu, t.dn, t.swiglu = b.isa, gu, dn, act
	t.int8 = b.int8x
	if t.int8 {
		t.xq = growBytes(t.xq, n*kernels.Q8Bytes(guCols))
		t.xqs = growBytes(t.xqs, slots*kernels.Q8Bytes(guCols))
		t.actq = growBytes(t.actq, slots*kernels.Q8Bytes(dnCols))
	}
	t.x, t.dst, t.weights, t.n, t.k, t.experts = xt, d, wt.data, n, k, ne
	if b.cpool != nil {
		t.runC(b)
		t.gu, t.dn, t.x, t.dst, t.weights = nil, nil, nil, nil, nil
		return nil
	}
	for ph, kind := range [...]opKind{moeGather: opMoEGather, moeGateUp: opMoEGateUp, moeDown: opMoEDown} {
		t0 := b.begin()
		t.phase = moePhase(ph)
		b.pool.run(t)
		if t.phase == moeGateUp && t.int8 {
			t.quantizeAct()
		}
		b.end(kind, t0)
	}
	t.gu, t.dn, t.x, t.dst, t.weights = nil, nil, nil, nil, nil
	return nil
}

type moePhase int

const (
	moeGather moePhase = iota // copy each slot's input row, block-split
	moeGateUp                 // gate_up product and clamped SwiGLU
	moeDown                   // down product and the routing-weighted sum
)

// moeTask is one MoE op. Buffers are [slots, width], slots in expert order.
type moeTask struct {
	isa     kernels.ISA
	phase   moePhase
	gu, dn  *experts
	swiglu  backend.SwiGLU
	x, dst  *floats
	weights []float32 // routing weights [n, k]
	n, k    int
	experts int

	offset        []int   // [experts+1] first slot of each expert
	slotOf, rowOf []int32 // slot of pair r·k+j; input row of a slot
	next          []int
	xs            []float32 // gathered block-split inputs
	hidden        []float32 // gate_up outputs, gate/up interleaved
	act, actSplit []float32 // SwiGLU outputs, plain and block-split
	y             []float32 // down outputs

	int8 bool // int8-activation products (SetInt8Experts)
	// Quantised (kernels.QuantizeQ8): the input rows, and in slot order
	// the slots' inputs and their SwiGLU outputs.
	xq, xqs, actq []byte
}

func growBytes(s []byte, n int) []byte {
	if cap(s) < n {
		s = make([]byte, n)
	}
	return s[:n]
}

// quantizeAct quantises every slot's SwiGLU output for the int8 down product.
func (t *moeTask) quantizeAct() {
	inter := t.gu.shape[1] / 2
	qb := kernels.Q8Bytes(inter)
	for s := range t.offset[t.experts] {
		kernels.QuantizeQ8(t.actq[s*qb:(s+1)*qb], t.act[s*inter:(s+1)*inter], inter)
	}
}

func (t *moeTask) scratchInts(n int) []int {
	if cap(t.next) < n {
		t.next = make([]int, n)
	}
	t.next = t.next[:n]
	return t.next
}

func (t *moeTask) run(part, parts int) {
	switch t.phase {
	case moeGather:
		cols := t.x.cols
		if t.int8 {
			qb := kernels.Q8Bytes(cols)
			if parts == 1 { // each row once, then copied to its k slots
				for r := range t.n {
					kernels.QuantizeQ8(t.xq[r*qb:(r+1)*qb], t.x.row(r), cols)
				}
				for s, r := range t.rowOf {
					copy(t.xqs[s*qb:(s+1)*qb], t.xq[int(r)*qb:])
				}
				return
			}
			lo, hi := span(len(t.rowOf), part, parts, 1)
			for s := lo; s < hi; s++ {
				kernels.QuantizeQ8(t.xqs[s*qb:(s+1)*qb], t.x.row(int(t.rowOf[s])), cols)
			}
			return
		}
		lo, hi := span(len(t.rowOf), part, parts, 1)
		for s := lo; s < hi; s++ {
			kernels.SplitBlocks(t.xs[s*cols:(s+1)*cols], t.x.row(int(t.rowOf[s])), cols)
		}
	case moeGateUp:
		rows, cols := t.gu.shape[1], t.x.cols
		// Whole 128-feature chunks of the SwiGLU output per thread, so it
		// can put its own part in the down product's chunk order.
		lo, hi := span(rows, part, parts, 2*4*mxfp4.BlockSize)
		t.product(t.gu, t.hidden, t.xs, t.xqs, rows, cols, lo, hi)
		inter, f0, f1 := rows/2, lo/2, hi/2
		for s := range t.offset[t.experts] {
			a := t.act[s*inter+f0 : s*inter+f1]
			t.isa.SwiGLU(a, t.hidden[s*rows+lo:s*rows+hi], t.swiglu.Alpha, t.swiglu.Limit)
			if !t.int8 { // quantised whole after the phase (quantizeAct)
				kernels.SplitBlocks(t.actSplit[s*inter+f0:s*inter+f1], a, f1-f0)
			}
		}
	case moeDown:
		rows, cols := t.dn.shape[1], t.dn.shape[2]*mxfp4.BlockSize
		lo, hi := span(rows, part, parts, 16)
		t.product(t.dn, t.y, t.actSplit, t.actq, rows, cols, lo, hi)
		t.weightedSum(lo, hi)
	}
}

// runC runs the MoE with the C pool: two jobs (gate_up of every selected
// expert, then down), with the gathering, the SwiGLU and the weighted sum
// on the calling thread between them (a few thousand floats per token).
func (t *moeTask) runC(b *Backend) {
	t0 := b.begin()
	t.phase = moeGather
	t.run(0, 1)
	b.end(opMoEGather, t0)

	t0 = b.begin()
	rows, cols := t.gu.shape[1], t.x.cols
	t.productC(b.cpool, t.gu, t.hidden, t.xs, t.xqs, rows, cols)
	b.cwait += b.cpool.Run(b.prof.on)
	inter := rows / 2
	for s := range t.offset[t.experts] {
		a := t.act[s*inter : (s+1)*inter]
		t.isa.SwiGLU(a, t.hidden[s*rows:(s+1)*rows], t.swiglu.Alpha, t.swiglu.Limit)
		if !t.int8 {
			kernels.SplitBlocks(t.actSplit[s*inter:(s+1)*inter], a, inter)
		}
	}
	if t.int8 {
		t.quantizeAct()
	}
	b.end(opMoEGateUp, t0)

	t0 = b.begin()
	rows, cols = t.dn.shape[1], t.dn.shape[2]*mxfp4.BlockSize
	t.productC(b.cpool, t.dn, t.y, t.actSplit, t.actq, rows, cols)
	b.cwait += b.cpool.Run(b.prof.on)
	t.phase = moeDown
	t.weightedSum(0, rows)
	b.end(opMoEDown, t0)
}

// productC adds the product of every expert that has slots to the pool's
// job: float32 (xs) or, with int8, the quantised slots (xq). Every level
// with a C pool has an int8 kernel (kernels.ISA.Int8Kernel).
func (t *moeTask) productC(p *kernels.Pool, w *experts, dst, xs []float32, xq []byte, rows, cols int) {
	groups := cols / mxfp4.BlockSize
	blockBytes, scaleBytes := rows*groups*mxfp4.BlockBytes, rows*groups
	qb := kernels.Q8Bytes(cols)
	for e := range t.experts {
		first, count := t.offset[e], t.offset[e+1]-t.offset[e]
		if count == 0 {
			continue
		}
		bl, sc, bias := w.blocks[e*blockBytes:(e+1)*blockBytes], w.scales[e*scaleBytes:(e+1)*scaleBytes], w.bias[e*rows:(e+1)*rows]
		d := dst[first*rows : (first+count)*rows]
		if t.int8 {
			p.MatMulMXFP4Q8(d, xq[first*qb:(first+count)*qb], count, bl, sc, rows, cols, bias)
		} else {
			p.MatMulMXFP4(d, xs[first*cols:(first+count)*cols], count, bl, sc, rows, cols, bias)
		}
	}
}

// weightedSum sets outputs [lo, hi) of each row to the routing-weighted
// sum of its experts' down outputs.
func (t *moeTask) weightedSum(lo, hi int) {
	rows := t.dn.shape[1]
	for r := range t.n {
		out := t.dst.row(r)[lo:hi]
		clear(out)
		for j := range t.k {
			w, s := t.weights[r*t.k+j], int(t.slotOf[r*t.k+j])
			for i, v := range t.y[s*rows+lo : s*rows+hi] {
				out[i] += w * v
			}
		}
	}
}

// product runs output rows [lo, hi) of every expert that has slots over
// those slots' inputs (float32 xs, or quantised xq with int8).
func (t *moeTask) product(w *experts, dst, xs []float32, xq []byte, rows, cols, lo, hi int) {
	groups := cols / mxfp4.BlockSize
	blockBytes, scaleBytes := rows*groups*mxfp4.BlockBytes, rows*groups
	qb := kernels.Q8Bytes(cols)
	for e := range t.experts {
		first, count := t.offset[e], t.offset[e+1]-t.offset[e]
		if count == 0 {
			continue
		}
		bl, sc, bias := w.blocks[e*blockBytes:(e+1)*blockBytes], w.scales[e*scaleBytes:(e+1)*scaleBytes], w.bias[e*rows:(e+1)*rows]
		if t.int8 {
			t.isa.MatMulMXFP4Q8(dst[first*rows:], xq[first*qb:], count, bl, sc, rows, cols, bias, lo, hi)
			continue
		}
		t.isa.MatMulMXFP4(dst[first*rows:], xs[first*cols:], count, bl, sc, rows, cols, bias, lo, hi)
	}
}

// expertBytes is what one expert's projection costs to read: MXFP4 blocks
// and scales, and the bias (widened to float32 at load).
func (w *experts) expertBytes() int64 {
	rows, groups := w.shape[1], w.shape[2]
	return int64(rows*groups*(mxfp4.BlockBytes+1) + 4*rows)
}
