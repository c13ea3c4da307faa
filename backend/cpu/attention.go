package cpu

import (
	"fmt"

	"github.com/gptoss/gptoss/attention"
	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/kernels"
)

// Attention implements backend.Backend. Keys before a segment's first
// position come from its cache; the segment's own keys come from k, so a
// chunk longer than the sliding window still sees exactly its window. The
// chunk is stored into the cache only after every row has attended. The
// work is split across threads by (row, kv-head) pairs.
func (b *Backend) Attention(out, q, k, v, sinks backend.Tensor, layer int, scale float32, segs []backend.Segment) error {
	defer b.end(opAttention, b.begin())
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
	hd, kvHeads, err := backend.CheckAttention(o.dims(), qt.dims(), kt.dims(), vt.dims(), heads, segs)
	if err != nil {
		return shapeErr(err)
	}
	items, longest := 0, 0
	for _, s := range segs {
		c, ok := s.Cache.(*attention.Cache)
		if !ok {
			return fmt.Errorf("cpu: attention: cache %T does not belong to the CPU backend", s.Cache)
		}
		if s.Pos != c.Len() || s.Pos+s.Len > c.MaxLen() {
			return fmt.Errorf("cpu: attention: segment at position %d+%d, cache holds %d of at most %d", s.Pos, s.Len, c.Len(), c.MaxLen())
		}
		items += s.Len * kvHeads
		longest = max(longest, s.Pos+s.Len)
		for i := range s.Len {
			lo, hi := attention.KeyRange(s.Pos+i, c.Window(), c.Sliding(layer))
			b.stats.KV += int64((hi - lo + 1) * kt.cols * 8) // keys and values, float32
		}
	}
	t := &b.attn
	for i := range t.scores {
		t.scores[i] = grow(t.scores[i], longest)
	}
	t.isa, t.o, t.q, t.k, t.v, t.sinks = b.isa, o, qt, kt, vt, st.data
	t.layer, t.scale, t.segs = layer, scale, segs
	t.hd, t.group, t.kvHeads, t.items = hd, heads/kvHeads, kvHeads, items
	if b.cpool != nil {
		t.runC(b)
	} else {
		b.pool.run(t)
	}
	t.o, t.q, t.k, t.v, t.segs = nil, nil, nil, nil, nil
	for _, s := range segs {
		c := s.Cache.(*attention.Cache)
		for i := range s.Len {
			if err := c.Store(layer, s.Pos+i, kt.row(s.Row+i), vt.row(s.Row+i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// attentionTask is one Attention op; item i of a segment is row i/kvHeads,
// kv-head i%kvHeads with its group of query heads.
type attentionTask struct {
	isa                kernels.ISA
	o, q, k, v         *floats
	sinks              []float32
	layer              int
	scale              float32
	segs               []backend.Segment
	hd, group, kvHeads int
	items              int
	scores             [][]float32 // per part
}

func (t *attentionTask) run(part, parts int) {
	// Items are dealt round-robin (item g to part g mod parts): a causal
	// prefill's later rows see more keys, so contiguous shares would load
	// the last part most.
	first := 0 // item number of the segment's first item
	for _, s := range t.segs {
		n := s.Len * t.kvHeads
		c := s.Cache.(*attention.Cache)
		var spans kernels.KeySpans
		for i := ((part-first)%parts + parts) % parts; i < n; i += parts {
			row, kv := i/t.kvHeads, i%t.kvHeads
			t.keySpans(&spans, c, s, row)
			t.isa.Attention(t.o.row(s.Row+row), t.q.row(s.Row+row), kv*t.group, (kv+1)*t.group, t.group, t.hd,
				&spans, t.sinks, t.scale, t.scores[part])
		}
		first += n
	}
}

// runC runs every item as one job of the C pool.
func (t *attentionTask) runC(b *Backend) {
	p := b.cpool
	p.SetAttention(t.group, t.hd, t.k.cols, t.sinks, t.scale, t.scores)
	var spans kernels.KeySpans
	for _, s := range t.segs {
		c := s.Cache.(*attention.Cache)
		for row := range s.Len {
			t.keySpans(&spans, c, s, row)
			for kv := range t.kvHeads {
				p.Attention(t.o.row(s.Row+row), t.q.row(s.Row+row), kv*t.group, (kv+1)*t.group, &spans)
			}
		}
	}
	b.cwait += p.Run(b.prof.on)
}

// keySpans lists the keys the segment's row `row` sees: the cached
// positions (one run, or two where a sliding layer's ring wrapped) and the
// segment's own rows up to itself.
func (t *attentionTask) keySpans(sp *kernels.KeySpans, c *attention.Cache, s backend.Segment, row int) {
	pos := s.Pos + row
	lo, _ := attention.KeyRange(pos, c.Window(), c.Sliding(t.layer))
	kvDim := t.k.cols
	*sp = kernels.KeySpans{Stride: kvDim}
	if cached := s.Pos - lo; cached > 0 {
		first := cached
		if c.Sliding(t.layer) {
			first = min(cached, c.Window()-lo%c.Window()) // up to the end of the ring
		}
		sp.K[0], sp.V[0], sp.N[0] = c.Key(t.layer, lo)[:first*kvDim], c.Value(t.layer, lo)[:first*kvDim], first
		if rest := cached - first; rest > 0 {
			sp.K[1], sp.V[1], sp.N[1] = c.Key(t.layer, lo+first)[:rest*kvDim], c.Value(t.layer, lo+first)[:rest*kvDim], rest
		}
	}
	own := max(lo, s.Pos) - s.Pos // first own row in the window
	n := row - own + 1
	sp.K[2] = t.k.data[(s.Row+own)*kvDim : (s.Row+row+1)*kvDim]
	sp.V[2] = t.v.data[(s.Row+own)*kvDim : (s.Row+row+1)*kvDim]
	sp.N[2] = n
}
