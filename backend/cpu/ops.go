package cpu

import (
	"fmt"

	"github.com/gptoss/gptoss/attention"
	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/kernels"
	"github.com/gptoss/gptoss/mxfp4"
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
	return nil
}

// RMSNorm implements backend.Backend.
func (b *Backend) RMSNorm(dst, x, gain backend.Tensor, n int, eps float32) error {
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
	kernels.MatMulBF16(d.data, s.data, n, m.data, out, in, bv, b.scratchFloats(in))
	return nil
}

// Add implements backend.Backend.
func (b *Backend) Add(dst, x backend.Tensor, n int) error {
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

// Attention implements backend.Backend. Keys before a segment's first
// position come from its cache; the segment's own keys come from k, so a
// chunk longer than the sliding window still sees exactly its window. The
// chunk is stored into the cache only after every row has attended.
func (b *Backend) Attention(out, q, k, v, sinks backend.Tensor, layer int, scale float32, segs []backend.Segment) error {
	o, err := as[*floats]("attention", out)
	if err != nil {
		return err
	}
	qt, err := as[*floats]("attention", q)
	if err != nil {
		return err
	}
	kt, err := as[*floats]("attention", k)
	if err != nil {
		return err
	}
	vt, err := as[*floats]("attention", v)
	if err != nil {
		return err
	}
	st, err := as[*vector]("attention", sinks)
	if err != nil {
		return err
	}
	heads := len(st.data)
	if heads == 0 || qt.cols%heads != 0 || o.cols != qt.cols || kt.cols != vt.cols {
		return fmt.Errorf("cpu: attention: q %v, k %v, v %v, out %v, %d sinks disagree", qt.Shape(), kt.Shape(), vt.Shape(), o.Shape(), heads)
	}
	hd := qt.cols / heads
	if kt.cols%hd != 0 || heads%(kt.cols/hd) != 0 {
		return fmt.Errorf("cpu: attention: kv width %d does not divide into heads of %d for %d query heads", kt.cols, hd, heads)
	}
	group := heads / (kt.cols / hd)
	for _, s := range segs {
		c, ok := s.Cache.(*attention.Cache)
		if !ok {
			return fmt.Errorf("cpu: attention: cache %T does not belong to the CPU backend", s.Cache)
		}
		if s.Pos != c.Len() || s.Pos+s.Len > c.MaxLen() {
			return fmt.Errorf("cpu: attention: segment at position %d+%d, cache holds %d of at most %d", s.Pos, s.Len, c.Len(), c.MaxLen())
		}
		if err := rowsOK("attention", s.Row+s.Len, o, qt, kt, vt); err != nil {
			return err
		}
		sliding := c.Sliding(layer)
		keys := make([][]float32, 0, s.Pos+s.Len)
		vals := make([][]float32, 0, s.Pos+s.Len)
		scores := b.scratchFloats(s.Pos + s.Len)
		for i := range s.Len {
			pos := s.Pos + i
			lo, hi := attention.KeyRange(pos, c.Window(), sliding)
			qrow, orow := qt.row(s.Row+i), o.row(s.Row+i)
			for h := range heads {
				kv := (h / group) * hd
				keys, vals = keys[:0], vals[:0]
				for u := lo; u <= hi; u++ {
					var kr, vr []float32
					if u < s.Pos {
						kr, vr = c.Key(layer, u), c.Value(layer, u)
					} else {
						kr, vr = kt.row(s.Row+u-s.Pos), vt.row(s.Row+u-s.Pos)
					}
					keys = append(keys, kr[kv:kv+hd])
					vals = append(vals, vr[kv:kv+hd])
				}
				attention.SinkHead(orow[h*hd:(h+1)*hd], qrow[h*hd:(h+1)*hd], keys, vals, st.data[h], scale, scores)
			}
		}
		for i := range s.Len {
			if err := c.Store(layer, s.Pos+i, kt.row(s.Row+i), vt.row(s.Row+i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// TopK implements backend.Backend.
func (b *Backend) TopK(idx, weights, logits backend.Tensor, k, n int) error {
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

// MoE implements backend.Backend.
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
	if err := rowsOK("moe", n, d, xt, wt); err != nil {
		return err
	}
	ne, guRows, guCols := gu.shape[0], gu.shape[1], gu.shape[2]*mxfp4.BlockSize
	dnRows, dnCols := dn.shape[1], dn.shape[2]*mxfp4.BlockSize
	if dn.shape[0] != ne || guCols != xt.cols || guRows != 2*dnCols || dnRows != d.cols || it.cols != wt.cols {
		return fmt.Errorf("cpu: moe: gate_up %v, down %v, x %v, out %v disagree", gu.shape, dn.shape, xt.Shape(), d.Shape())
	}
	buf := b.scratchFloats(guRows + dnCols + dnRows)
	hidden, a, y := buf[:guRows], buf[guRows:guRows+dnCols], buf[guRows+dnCols:]
	guBlock, dnBlock := guRows*guCols/2, dnRows*dnCols/2
	guScale, dnScale := guRows*guCols/mxfp4.BlockSize, dnRows*dnCols/mxfp4.BlockSize
	for r := range n {
		out := d.row(r)
		clear(out)
		for j := range it.cols {
			e := int(it.data[r*it.cols+j])
			if e < 0 || e >= ne {
				return fmt.Errorf("cpu: moe: expert %d outside [0, %d)", e, ne)
			}
			kernels.MatVecMXFP4(hidden, xt.row(r), gu.blocks[e*guBlock:(e+1)*guBlock], gu.scales[e*guScale:(e+1)*guScale], guRows, guCols, gu.bias[e*guRows:(e+1)*guRows])
			kernels.SwiGLU(a, hidden, act.Alpha, act.Limit)
			kernels.MatVecMXFP4(y, a, dn.blocks[e*dnBlock:(e+1)*dnBlock], dn.scales[e*dnScale:(e+1)*dnScale], dnRows, dnCols, dn.bias[e*dnRows:(e+1)*dnRows])
			w := wt.data[r*wt.cols+j]
			for i, v := range y {
				out[i] += w * v
			}
		}
	}
	return nil
}

// CopyRows implements backend.Backend.
func (b *Backend) CopyRows(dst, src backend.Tensor, rows []int) error {
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
