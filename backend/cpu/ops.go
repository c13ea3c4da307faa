package cpu

import (
	"fmt"

	"github.com/gptoss/gptoss/attention"
	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/kernels"
)

// as converts a handle to this backend's concrete type, or says which op
// got a foreign tensor.
func as[T backend.Tensor](op string, t backend.Tensor) (T, error) {
	v, ok := t.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("cpu: %s: tensor %T does not belong to the CPU backend", op, t)
	}
	return v, nil
}

func rowsOK(op string, n int, ts ...*floats) error {
	for _, t := range ts {
		if n > t.rows {
			return fmt.Errorf("cpu: %s: %d rows requested, tensor has %d", op, n, t.rows)
		}
	}
	return nil
}

// Embed implements backend.Backend.
func (b *Backend) Embed(dst, table backend.Tensor, tokens []int32) error {
	defer b.end(opOther, b.begin())
	d, err := as[*floats]("embed", dst)
	if err != nil {
		return err
	}
	w, err := as[*matrix]("embed", table)
	if err != nil {
		return err
	}
	vocab, h := w.shape[0], w.shape[1]
	if d.cols != h || len(tokens) > d.rows {
		return fmt.Errorf("cpu: embed: %d tokens of width %d into %v", len(tokens), h, d.Shape())
	}
	for i, t := range tokens {
		if t < 0 || int(t) >= vocab {
			return fmt.Errorf("cpu: embed: token %d outside the vocabulary of %d", t, vocab)
		}
		kernels.DecodeBF16(d.row(i), w.data[int(t)*h*2:(int(t)+1)*h*2])
	}
	b.stats.Embed += int64(len(tokens) * h * 2)
	return nil
}

// RMSNorm implements backend.Backend.
func (b *Backend) RMSNorm(dst, x, gain backend.Tensor, n int, eps float32) error {
	defer b.end(opNorm, b.begin())
	d, err := as[*floats]("rmsnorm", dst)
	if err != nil {
		return err
	}
	s, err := as[*floats]("rmsnorm", x)
	if err != nil {
		return err
	}
	g, err := as[*vector]("rmsnorm", gain)
	if err != nil {
		return err
	}
	if err := rowsOK("rmsnorm", n, d, s); err != nil {
		return err
	}
	if d.cols != s.cols || len(g.data) != s.cols {
		return fmt.Errorf("cpu: rmsnorm: widths %d, %d and gain %d differ", d.cols, s.cols, len(g.data))
	}
	for r := range n {
		kernels.RMSNorm(d.row(r), s.row(r), g.data, eps)
	}
	return nil
}

// Linear implements backend.Backend.
func (b *Backend) Linear(dst, x, w, bias backend.Tensor, n int) error {
	d, err := as[*floats]("linear", dst)
	if err != nil {
		return err
	}
	s, err := as[*floats]("linear", x)
	if err != nil {
		return err
	}
	m, err := as[*matrix]("linear", w)
	if err != nil {
		return err
	}
	out, in := m.shape[0], m.shape[1]
	var bv []float32
	if bias != nil {
		v, err := as[*vector]("linear", bias)
		if err != nil {
			return err
		}
		if len(v.data) != out {
			return fmt.Errorf("cpu: linear: bias of %d for %d outputs", len(v.data), out)
		}
		bv = v.data
	}
	if err := rowsOK("linear", n, d, s); err != nil {
		return err
	}
	if s.cols != in || d.cols != out {
		return fmt.Errorf("cpu: linear: %v × %v into %v", s.Shape(), m.shape, d.Shape())
	}
	b.stats.Dense += int64(len(m.data) + 4*len(bv))
	defer b.end(m.kind, b.begin())
	if b.cpool != nil {
		b.cpool.MatMulBF16(d.data, s.data, n, m.data, out, in, bv)
		b.cwait += b.cpool.Run(b.prof.on)
		return nil
	}
	b.linear = linearTask{isa: b.isa, dst: d.data, x: s.data, n: n, w: m.data, out: out, in: in, bias: bv}
	b.pool.run(&b.linear)
	b.linear = linearTask{} // drop the references to the operands
	return nil
}

// linearTask splits a BF16 matrix product by output rows, so each thread
// reads its own part of the weights.
type linearTask struct {
	isa     kernels.ISA
	dst, x  []float32
	n       int
	w       []byte
	out, in int
	bias    []float32
}

func (t *linearTask) run(part, parts int) {
	lo, hi := span(t.out, part, parts, 16)
	t.isa.MatMulBF16(t.dst, t.x, t.n, t.w, t.out, t.in, t.bias, lo, hi)
}

// Add implements backend.Backend.
func (b *Backend) Add(dst, x backend.Tensor, n int) error {
	defer b.end(opOther, b.begin())
	d, err := as[*floats]("add", dst)
	if err != nil {
		return err
	}
	s, err := as[*floats]("add", x)
	if err != nil {
		return err
	}
	if err := rowsOK("add", n, d, s); err != nil {
		return err
	}
	if d.cols != s.cols {
		return fmt.Errorf("cpu: add: widths %d and %d differ", d.cols, s.cols)
	}
	for i, v := range s.data[:n*s.cols] {
		d.data[i] += v
	}
	return nil
}

// RoPE implements backend.Backend.
func (b *Backend) RoPE(x backend.Tensor, heads int, rope *attention.RoPE, segs []backend.Segment) error {
	defer b.end(opRoPE, b.begin())
	t, err := as[*floats]("rope", x)
	if err != nil {
		return err
	}
	hd := rope.HeadDim()
	if heads*hd != t.cols {
		return fmt.Errorf("cpu: rope: %d heads of %d in width %d", heads, hd, t.cols)
	}
	cs := b.scratchFloats(hd)
	cos, sin := cs[:hd/2], cs[hd/2:]
	for _, s := range segs {
		if s.Row+s.Len > t.rows {
			return fmt.Errorf("cpu: rope: segment rows %d+%d past %d", s.Row, s.Len, t.rows)
		}
		for i := range s.Len {
			rope.CosSin(s.Pos+i, cos, sin)
			attention.Rotate(t.row(s.Row+i), heads, hd, cos, sin)
		}
	}
	return nil
}

// TopK implements backend.Backend.
func (b *Backend) TopK(idx, weights, logits backend.Tensor, k, n int) error {
	defer b.end(opOther, b.begin())
	it, err := as[*ints]("topk", idx)
	if err != nil {
		return err
	}
	wt, err := as[*floats]("topk", weights)
	if err != nil {
		return err
	}
	lt, err := as[*floats]("topk", logits)
	if err != nil {
		return err
	}
	if err := rowsOK("topk", n, wt, lt); err != nil {
		return err
	}
	if k <= 0 || k > lt.cols || it.cols != k || wt.cols != k || n > it.rows {
		return fmt.Errorf("cpu: topk: k=%d of %d into %v and %v", k, lt.cols, it.Shape(), wt.Shape())
	}
	for r := range n {
		kernels.TopK(it.data[r*k:(r+1)*k], wt.row(r), lt.row(r), k)
	}
	return nil
}

// CopyRows implements backend.Backend.
func (b *Backend) CopyRows(dst, src backend.Tensor, rows []int) error {
	defer b.end(opOther, b.begin())
	d, err := as[*floats]("copyrows", dst)
	if err != nil {
		return err
	}
	s, err := as[*floats]("copyrows", src)
	if err != nil {
		return err
	}
	if d.cols != s.cols || len(rows) > d.rows {
		return fmt.Errorf("cpu: copyrows: %d rows of %v into %v", len(rows), s.Shape(), d.Shape())
	}
	for i, r := range rows {
		if r < 0 || r >= s.rows {
			return fmt.Errorf("cpu: copyrows: row %d outside [0, %d)", r, s.rows)
		}
		copy(d.row(i), s.row(r))
	}
	return nil
}
