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

// shapeErr names the backend in a shared shape check's error.
func shapeErr(err error) error { return fmt.Errorf("cpu: %w", err) }

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
	h := w.shape[1]
	if err := backend.CheckEmbed(d.dims(), w.shape[0], h, tokens); err != nil {
		return shapeErr(err)
	}
	for i, t := range tokens {
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
	if err := backend.CheckRMSNorm(n, d.dims(), s.dims(), len(g.data)); err != nil {
		return shapeErr(err)
	}
	for r := range n {
		kernels.RMSNorm(d.row(r), s.row(r), g.data, eps)
	}
	return nil
}

// Linear implements backend.Backend.
func (b *Backend) Linear(dst, x, w, bias backend.Tensor, n int) error {
	p, err := b.checkLinear(dst, x, w, bias, n)
	if err != nil {
		return err
	}
	ps := [1]linearOperands{p}
	b.runLinears(ps[:])
	return nil
}

// Linear3 implements backend.Linear3: the three products are one pool
// job, so the threads meet once instead of three times (in decode, q, k
// and v of 20b were three jobs of 23.6, 2.9 and 2.9 MB).
func (b *Backend) Linear3(x backend.Tensor, n int, dst, w, bias [3]backend.Tensor) error {
	var ps [3]linearOperands
	for i := range ps {
		p, err := b.checkLinear(dst[i], x, w[i], bias[i], n)
		if err != nil {
			return err
		}
		ps[i] = p
	}
	b.runLinears(ps[:])
	return nil
}

// linearOperands are the checked operands of one product.
type linearOperands struct {
	dst, x, bias []float32
	n            int
	w            []byte
	out, in      int
	kind         opKind
}

// bytes is what the product reads of its weights and bias.
func (p linearOperands) bytes() int64 { return int64(len(p.w) + 4*len(p.bias)) }

// checkLinear checks one product's operands.
func (b *Backend) checkLinear(dst, x, w, bias backend.Tensor, n int) (linearOperands, error) {
	d, err := as[*floats]("linear", dst)
	if err != nil {
		return linearOperands{}, err
	}
	s, err := as[*floats]("linear", x)
	if err != nil {
		return linearOperands{}, err
	}
	m, err := as[*matrix]("linear", w)
	if err != nil {
		return linearOperands{}, err
	}
	out, in := m.shape[0], m.shape[1]
	var bv []float32
	nb := -1
	if bias != nil {
		v, err := as[*vector]("linear", bias)
		if err != nil {
			return linearOperands{}, err
		}
		bv, nb = v.data, len(v.data)
	}
	if err := backend.CheckLinear(n, d.dims(), s.dims(), out, in, nb); err != nil {
		return linearOperands{}, shapeErr(err)
	}
	return linearOperands{dst: d.data, x: s.data, bias: bv, n: n, w: m.data, out: out, in: in, kind: m.kind}, nil
}

// runLinears runs checked products of one op: as one job of the C pool,
// or one after another on the Go pool. The profile charges them to the
// first product's kind.
func (b *Backend) runLinears(ps []linearOperands) {
	for _, p := range ps {
		b.stats.Dense += p.bytes()
	}
	defer b.end(ps[0].kind, b.begin())
	if b.cpool != nil {
		for _, p := range ps {
			b.cpool.MatMulBF16(p.dst, p.x, p.n, p.w, p.out, p.in, p.bias)
		}
		b.cwait += b.cpool.Run(b.prof.on)
		return
	}
	for _, p := range ps {
		b.linear = linearTask{isa: b.isa, linearOperands: p}
		b.pool.run(&b.linear)
	}
	b.linear = linearTask{} // drop the references to the operands
}

// linearTask splits a BF16 matrix product by output rows, so each thread
// reads its own part of the weights.
type linearTask struct {
	isa kernels.ISA
	linearOperands
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
	if err := backend.CheckAdd(n, d.dims(), s.dims()); err != nil {
		return shapeErr(err)
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
	if err := backend.CheckRoPE(t.dims(), heads, hd, segs); err != nil {
		return shapeErr(err)
	}
	cs := b.scratchFloats(hd)
	cos, sin := cs[:hd/2], cs[hd/2:]
	for _, s := range segs {
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
	if err := backend.CheckTopK(k, n, it.dims(), wt.dims(), lt.dims()); err != nil {
		return shapeErr(err)
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
	if err := backend.CheckCopyRows(d.dims(), s.dims(), rows); err != nil {
		return shapeErr(err)
	}
	for i, r := range rows {
		copy(d.row(i), s.row(r))
	}
	return nil
}
