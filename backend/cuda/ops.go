package cuda

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/gptoss/gptoss/attention"
	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/backend/cuda/driver"
	"github.com/gptoss/gptoss/mxfp4"
)

// as converts a handle to this backend's concrete type, or says which op
// got a foreign (or failed) tensor.
func as[T backend.Tensor](op string, t backend.Tensor) (T, error) {
	v, ok := t.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("cuda: %s: tensor %T does not belong to the CUDA backend", op, t)
	}
	switch x := any(v).(type) {
	case *floats:
		if x.err != nil {
			return v, fmt.Errorf("cuda: %s: %w", op, x.err)
		}
	case *ints:
		if x.err != nil {
			return v, fmt.Errorf("cuda: %s: %w", op, x.err)
		}
	}
	return v, nil
}

// shapeErr names the backend in a shared shape check's error.
func shapeErr(err error) error { return fmt.Errorf("cuda: %w", err) }

func ceil(a, b int) int { return (a + b - 1) / b }

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
	h := w.shape[1]
	if err := backend.CheckEmbed(d.dims(), w.shape[0], h, tokens); err != nil {
		return shapeErr(err)
	}
	if len(tokens) == 0 {
		return nil
	}
	tp, err := b.stageInts(tokens)
	if err != nil {
		return err
	}
	b.stats.Embed += int64(len(tokens) * h * 2)
	b.a().Ptr(d.p).Ptr(w.p).Ptr(tp).Int(h)
	return b.launch(b.k.embed, driver.D1(len(tokens)), driver.D1(256), 0)
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
	if err := backend.CheckRMSNorm(n, d.dims(), s.dims(), g.n); err != nil {
		return shapeErr(err)
	}
	if n == 0 {
		return nil
	}
	b.a().Ptr(d.p).Ptr(s.p).Ptr(g.p).Int(s.cols).Float32(eps)
	return b.launch(b.k.rmsnorm, driver.D1(n), driver.D1(256), 0)
}

// matvecRows is MV_ROWS in matmul.cu: up to this many rows the matrix-vector
// kernel reads each weight once for all of them.
const matvecRows = 8

// tensorMinRows is the batch from which, with SetTensorCores, products
// run on the tensor cores: below it the tile would be mostly padding.
const tensorMinRows = 16

// SetTensorCores routes Linear over tensorMinRows rows or more (prefill
// and large batches: q, k, v, o, router, unembedding) to the tensor-core
// kernel, BF16 weights times activations split into two BF16 halves with
// float32 accumulation. Off by default: the float32 kernel is the one the
// golden fixtures were checked with; the tensor-core path is checked
// against the CPU by a normalised-MSE bound and against the golden
// fixtures by TestGoldenGPU, on a GPU.
func (b *Backend) SetTensorCores(on bool) { b.tensorCores = on }

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
	var bp driver.DevicePtr
	nb := -1
	if bias != nil {
		v, err := as[*vector]("linear", bias)
		if err != nil {
			return err
		}
		bp, nb = v.p, v.n
	}
	if err := backend.CheckLinear(n, d.dims(), s.dims(), out, in, nb); err != nil {
		return shapeErr(err)
	}
	if n == 0 {
		return nil
	}
	b.stats.Dense += int64(2 * out * in)
	if bp != 0 {
		b.stats.Dense += int64(4 * out)
	}
	b.g.rows = max(b.g.rows, n)
	if n <= matvecRows {
		split := matvecSplit(out)
		b.a().Ptr(d.p).Ptr(s.p).Ptr(m.p).Ptr(bp).Int(n).Int(out).Int(in).Int(split)
		return b.launch(b.k.matvec, driver.D1(ceil(out*split, 8)), driver.D1(256), 0)
	}
	grid := driver.Dim3{X: uint32(ceil(out, 64)), Y: uint32(ceil(n, 64)), Z: 1}
	b.a().Ptr(d.p).Ptr(s.p).Ptr(m.p).Ptr(bp).Int(n).Int(out).Int(in)
	if b.tensorCores && n >= tensorMinRows {
		return b.launch(b.k.matmulTC, grid, driver.D1(128), 0)
	}
	return b.launch(b.k.matmul, grid, driver.D1(256), 0)
}

// matvecSplit is the number of warps matvec_bf16 gives each output: enough
// that a small matrix (k, v, the router) still has some 8192 warps
// streaming it, at most one block (8 warps) per output.
func matvecSplit(out int) int {
	split := 1
	for split < 8 && out*split < 8192 {
		split *= 2
	}
	return split
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
	if err := backend.CheckAdd(n, d.dims(), s.dims()); err != nil {
		return shapeErr(err)
	}
	count := n * s.cols
	if count == 0 {
		return nil
	}
	b.a().Ptr(d.p).Ptr(s.p).Int(count)
	return b.launch(b.k.add, driver.D1(ceil(count, 256)), driver.D1(256), 0)
}

// RoPE implements backend.Backend. The cos/sin rows come from the same
// attention.RoPE the CPU backend uses, so both rotate by equal values.
func (b *Backend) RoPE(x backend.Tensor, heads int, rope *attention.RoPE, segs []backend.Segment) error {
	t, err := as[*floats]("rope", x)
	if err != nil {
		return err
	}
	hd := rope.HeadDim()
	if err := backend.CheckRoPE(t.dims(), heads, hd, segs); err != nil {
		return shapeErr(err)
	}
	// The model's segments fill consecutive rows (others are refused): one launch covers them
	// all, the cos/sin rows staged once per step.
	first, rows := 0, 0
	for i, s := range segs {
		if i == 0 {
			first = s.Row
		}
		if s.Row != first+rows {
			return fmt.Errorf("cuda: rope: segment at row %d does not continue at row %d", s.Row, first+rows)
		}
		rows += s.Len
	}
	if rows == 0 {
		return nil
	}
	c := &b.rope
	if !c.valid(rope, b.stageGen, segs) {
		cs := b.hostFloats(rows * hd)
		for _, s := range segs {
			for j := range s.Len {
				r := (s.Row - first + j) * hd
				rope.CosSin(s.Pos+j, cs[r:r+hd/2], cs[r+hd/2:r+hd])
			}
		}
		p, err := b.stageFloats(cs)
		if err != nil {
			return err
		}
		// Staging may have started a new generation; the rows live in
		// the one current after it.
		c.rope, c.gen, c.ptr = rope, b.stageGen, p
		c.segs = c.segs[:0]
		for _, s := range segs {
			c.segs = append(c.segs, [2]int{s.Pos, s.Len})
		}
	}
	b.a().Ptr(t.row(first)).Ptr(c.ptr).Int(heads).Int(hd).Int(t.cols)
	return b.launch(b.k.rope, driver.D1(rows), driver.D1(128), 0)
}

// ropeCache remembers where a step's cos/sin rows were staged: q and k of
// every layer rotate by the same positions, so a step computes them (in
// float64) and stages them once instead of twice per layer. Rows are
// reused only within the staging generation they were staged in
// (b.stageGen), during which nothing overwrites them.
type ropeCache struct {
	rope *attention.RoPE
	gen  uint64
	ptr  driver.DevicePtr
	segs [][2]int // position and length of each segment
}

func (c *ropeCache) valid(rope *attention.RoPE, gen uint64, segs []backend.Segment) bool {
	if c.ptr == 0 || c.rope != rope || c.gen != gen || len(c.segs) != len(segs) {
		return false
	}
	for i, s := range segs {
		if c.segs[i] != [2]int{s.Pos, s.Len} {
			return false
		}
	}
	return true
}

// rowMetaBytes is sizeof(RowMeta) in attention.cu.
const rowMetaBytes = 32

// Attention implements backend.Backend: attn_split over (row, head,
// chunk), attn_combine with the sink, then kv_store of the rows' k, v.
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
	heads := st.n
	hd, kvHeads, err := backend.CheckAttention(o.dims(), qt.dims(), kt.dims(), vt.dims(), heads, segs)
	if err != nil {
		return shapeErr(err)
	}
	if hd > 256 {
		return fmt.Errorf("cuda: attention: head_dim %d above the kernels' 256", hd)
	}
	n := 0
	for _, s := range segs {
		c, ok := s.Cache.(*kvCache)
		if !ok {
			return fmt.Errorf("cuda: attention: cache %T does not belong to the CUDA backend", s.Cache)
		}
		if layer < 0 || layer >= len(c.layers) || c.kvDim != kt.cols {
			return fmt.Errorf("cuda: attention: layer %d, kv width %d for a cache of %d layers, width %d", layer, kt.cols, len(c.layers), c.kvDim)
		}
		if s.Pos != c.Len() || s.Pos+s.Len > c.spec.MaxLen {
			return fmt.Errorf("cuda: attention: segment at position %d+%d, cache holds %d of at most %d", s.Pos, s.Len, c.Len(), c.spec.MaxLen)
		}
		if s.Row != n || s.Len <= 0 {
			return fmt.Errorf("cuda: attention: segment at row %d (length %d) does not continue at row %d", s.Row, s.Len, n)
		}
		if !c.layers[layer].ring {
			if err := c.grow(layer, s.Pos+s.Len); err != nil {
				return err
			}
		}
		n += s.Len
	}
	if n == 0 {
		return nil
	}
	// Long segments go to attn_tiled in tiles of attTileRows rows; the
	// other rows (decode, short chunks) to the split-K kernels. The index
	// list holds the short rows first, then the tiles' (row, count) pairs.
	tiled := b.tiledFits(hd)
	list := b.hostInts(0)
	capKeys := 0
	for _, s := range segs {
		if tiled && s.Len >= tiledMinRows {
			continue
		}
		for i := range s.Len {
			list = append(list, int32(s.Row+i))
		}
		// The split count follows the keys the layer can hold (the ring,
		// or the full layer's allocated capacity), not the keys it holds
		// now: it then stays the same from one decode step to the next,
		// which a replayed graph needs (it is a launch dimension), and
		// the kernel sizes each chunk from the row's real key count, so
		// surplus chunks are empty.
		c := s.Cache.(*kvCache)
		capKeys = max(capKeys, c.layers[layer].capacity)
	}
	short := len(list)
	for _, s := range segs {
		if !tiled || s.Len < tiledMinRows {
			continue
		}
		for r := s.Row; r < s.Row+s.Len; r += attTileRows {
			list = append(list, int32(r), int32(min(attTileRows, s.Row+s.Len-r)))
		}
	}
	b.ints = list
	// Enough chunks to fill the GPU when rows × heads alone do not, each
	// at least 64 keys of the capacity long.
	splits := max(1, min(ceil(capKeys, 64), ceil(8*max(b.info.SMs, 1), max(short, 1)*heads), 64))
	part := &b.scratch[0]
	if short > 0 {
		// Growing drains the queue, which restarts the staging arena: it
		// must come before this op stages anything.
		if err := b.ensure(part, int64(4*short*heads*splits*(hd+2))); err != nil {
			return err
		}
	}
	// One staging call for the row metadata and the index list, after
	// every allocation: a later drain would free the arena space that
	// earlier staged items of this op still point into.
	metaLen := n * rowMetaBytes
	staged := b.hostBytes(metaLen + 4*len(list))
	for _, s := range segs {
		c := s.Cache.(*kvCache)
		ly := c.layers[layer]
		window := 0
		if ly.ring {
			window = c.spec.Window
		}
		for i := range s.Len {
			m := staged[(s.Row+i)*rowMetaBytes:]
			binary.LittleEndian.PutUint64(m[0:], uint64(ly.k))
			binary.LittleEndian.PutUint64(m[8:], uint64(ly.v))
			binary.LittleEndian.PutUint32(m[16:], uint32(s.Pos+i))
			binary.LittleEndian.PutUint32(m[20:], uint32(s.Row))
			binary.LittleEndian.PutUint32(m[24:], uint32(s.Pos))
			binary.LittleEndian.PutUint32(m[28:], uint32(window))
			lo, hi := attention.KeyRange(s.Pos+i, c.spec.Window, ly.ring)
			b.stats.KV += int64((hi - lo + 1) * kt.cols * 8) // keys and values, float32
		}
	}
	for i, v := range list {
		binary.LittleEndian.PutUint32(staged[metaLen+4*i:], uint32(v))
	}
	mp, err := b.stageBytes(staged)
	if err != nil {
		return err
	}
	listPtr := mp + driver.DevicePtr(metaLen)
	if short > 0 {
		var rp driver.DevicePtr // nil: every row, in order
		if short < n {
			rp = listPtr
		}
		b.a().Ptr(part.p).Ptr(qt.p).Ptr(kt.p).Ptr(vt.p).Ptr(mp).Ptr(rp).Int(heads).Int(kvHeads).Int(hd).Float32(scale)
		if err := b.launch(b.k.attnSplit, driver.Dim3{X: uint32(short), Y: uint32(heads), Z: uint32(splits)}, driver.D1(128), 0); err != nil {
			return err
		}
		b.a().Ptr(o.p).Ptr(part.p).Ptr(st.p).Ptr(rp).Int(heads).Int(hd).Int(splits)
		if err := b.launch(b.k.attnCombine, driver.Dim3{X: uint32(short), Y: uint32(heads), Z: 1}, driver.D1(64), 0); err != nil {
			return err
		}
	}
	if tiles := (len(list) - short) / 2; tiles > 0 {
		tp := listPtr + driver.DevicePtr(4*short)
		b.a().Ptr(o.p).Ptr(qt.p).Ptr(kt.p).Ptr(vt.p).Ptr(st.p).Ptr(mp).Ptr(tp).Int(heads).Int(kvHeads).Int(hd).Float32(scale)
		if err := b.launch(b.k.attnTiled, driver.Dim3{X: uint32(tiles), Y: uint32(heads), Z: 1}, driver.D1(128), tiledSharedBytes(hd)); err != nil {
			return err
		}
	}
	b.a().Ptr(kt.p).Ptr(vt.p).Ptr(mp).Int(kt.cols)
	return b.launch(b.k.kvStore, driver.D1(n), driver.D1(256), 0)
}

// Tiled prefill attention: segments of at least tiledMinRows rows use
// attn_tiled, in tiles of attTileRows rows (ATT_TQ) and attTileKeys keys
// (ATT_TK). Below that the split-K kernels, which read every key once per
// row, are as good, and decode needs their split over the keys.
const (
	tiledMinRows = 16
	attTileRows  = 32
	attTileKeys  = 32
)

// tiledSharedBytes is attn_tiled's dynamic shared memory: the tile's
// queries, the keys (rows padded to hd+1) and the values.
func tiledSharedBytes(hd int) int {
	return 4 * (attTileRows*hd + attTileKeys*(hd+1) + attTileKeys*hd)
}

// tiledFits says whether attn_tiled can run for head dimension hd,
// raising its shared memory limit past the default 48 KiB once when the
// device allows (head_dim 64, gpt-oss's, needs 25 KiB).
func (b *Backend) tiledFits(hd int) bool {
	need := tiledSharedBytes(hd)
	if need <= b.tiledShared {
		return true
	}
	if need > b.info.SharedOptin {
		return false
	}
	if err := b.k.attnTiled.SetMaxDynamicShared(need); err != nil {
		return false // the split-K kernels serve every row instead
	}
	b.tiledShared = need
	return true
}

// hostInts returns the reusable host index buffer, empty, with room for n.
func (b *Backend) hostInts(n int) []int32 {
	if cap(b.ints) < n {
		b.ints = make([]int32, 0, n)
	}
	return b.ints[:0]
}

// hostFloats returns the reusable host float buffer of n values.
func (b *Backend) hostFloats(n int) []float32 {
	if cap(b.floats) < n {
		b.floats = make([]float32, n)
	}
	return b.floats[:n]
}

// hostBytes returns the reusable host packing buffer, zeroed, of n bytes.
func (b *Backend) hostBytes(n int) []byte {
	if cap(b.host) < n {
		b.host = make([]byte, n)
	}
	b.host = b.host[:n]
	clear(b.host)
	return b.host
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
	if err := backend.CheckTopK(k, n, it.dims(), wt.dims(), lt.dims()); err != nil {
		return shapeErr(err)
	}
	if n == 0 {
		return nil
	}
	b.a().Ptr(it.p).Ptr(wt.p).Ptr(lt.p).Int(n).Int(lt.cols).Int(k)
	return b.launch(b.k.topk, driver.D1(ceil(n, 4)), driver.D1(128), 0) // a warp per row
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
	if err := backend.CheckCopyRows(d.dims(), s.dims(), rows); err != nil {
		return shapeErr(err)
	}
	if len(rows) == 0 {
		return nil
	}
	r32 := b.hostInts(len(rows))
	for _, r := range rows {
		r32 = append(r32, int32(r))
	}
	b.ints = r32
	rp, err := b.stageInts(r32)
	if err != nil {
		return err
	}
	b.a().Ptr(d.p).Ptr(s.p).Ptr(rp).Int(s.cols)
	return b.launch(b.k.copyRows, driver.D1(len(rows)), driver.D1(256), 0)
}

// groupedMinSlots is the batch size (token × choice pairs) from which MoE
// sorts the pairs by expert and runs the grouped product, reading each
// selected expert once per batch; below it the per-pair matrix-vector
// kernels avoid the host round trip the sort needs.
const groupedMinSlots = 64

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
	if err := backend.CheckMoE(n, d.dims(), xt.dims(), it.dims(), wt.dims(), gu.shape, dn.shape); err != nil {
		return shapeErr(err)
	}
	ne, guRows, guCols := gu.shape[0], gu.shape[1], gu.shape[2]*mxfp4.BlockSize
	dnRows, dnCols := dn.shape[1], dn.shape[2]*mxfp4.BlockSize
	if n == 0 {
		return nil
	}
	k := it.cols
	slots := n * k
	inter := dnCols
	hid, ac, y := &b.scratch[1], &b.scratch[2], &b.scratch[3]
	if err := b.ensure(ac, int64(4*slots*inter)); err != nil {
		return err
	}
	if err := b.ensure(y, int64(4*slots*dnRows)); err != nil {
		return err
	}
	if slots < groupedMinSlots {
		// The ids stay on the device: the kernels check them (status
		// word) and moe_combine counts the distinct experts read, so a
		// decode step has no round trip and can be replayed as a graph.
		b.a().Ptr(ac.p).Ptr(xt.p).Ptr(it.p).Ptr(gu.blocks).Ptr(gu.scales).Ptr(gu.bia).Int(k).Int(guRows).Int(guCols).
			Float32(act.Alpha).Float32(act.Limit).Int(ne).Ptr(b.status + statusErr)
		if err := b.launch(b.k.gateUp, driver.Dim3{X: uint32(ceil(inter, 8)), Y: uint32(slots), Z: 1}, driver.D1(256), 0); err != nil {
			return err
		}
		b.a().Ptr(y.p).Ptr(ac.p).Ptr(it.p).Ptr(dn.blocks).Ptr(dn.scales).Ptr(dn.bia).Int(dnRows).Int(dnCols).
			Int(ne).Ptr(b.status + statusErr)
		if err := b.launch(b.k.down, driver.Dim3{X: uint32(ceil(dnRows, 16)), Y: uint32(slots), Z: 1}, driver.D1(256), 0); err != nil {
			return err
		}
		b.a().Ptr(d.p).Ptr(y.p).Ptr(wt.p).Int(n).Int(k).Int(dnRows).
			Ptr(it.p).Ptr(b.status + statusExperts).Int64(gu.expertBytes() + dn.expertBytes())
		return b.launch(b.k.combine, driver.D1(ceil(n*dnRows, 256)), driver.D1(256), 0)
	}
	// Grouping sorts the pairs on the host, so the ids come back; a bad
	// id would make a kernel read outside the weights.
	ids := make([]int32, slots)
	if err := b.ReadInts(ids, it, n); err != nil {
		return fmt.Errorf("cuda: moe: %w", err)
	}
	for _, e := range ids {
		if e < 0 || int(e) >= ne {
			return fmt.Errorf("cuda: moe: expert %d outside [0, %d)", e, ne)
		}
	}
	if err := b.ensure(hid, int64(4*slots*guRows)); err != nil {
		return err
	}
	g, err := b.groupSlots(ids, ne)
	if err != nil {
		return err
	}
	b.stats.Experts += int64(g.experts) * (gu.expertBytes() + dn.expertBytes())
	b.a().Ptr(hid.p).Ptr(xt.p).Ptr(g.slots).Ptr(g.tileExpert).Ptr(g.tileFirst).Ptr(g.offsets).
		Ptr(gu.blocks).Ptr(gu.scales).Ptr(gu.bia).Int(guRows).Int(guCols).Int(k)
	if err := b.launchGrouped(guRows, g.tiles); err != nil {
		return err
	}
	b.a().Ptr(ac.p).Ptr(hid.p).Int(slots * inter).Float32(act.Alpha).Float32(act.Limit)
	if err := b.launch(b.k.swiglu, driver.D1(ceil(slots*inter, 256)), driver.D1(256), 0); err != nil {
		return err
	}
	b.a().Ptr(y.p).Ptr(ac.p).Ptr(g.slots).Ptr(g.tileExpert).Ptr(g.tileFirst).Ptr(g.offsets).
		Ptr(dn.blocks).Ptr(dn.scales).Ptr(dn.bia).Int(dnRows).Int(dnCols).Int(1)
	if err := b.launchGrouped(dnRows, g.tiles); err != nil {
		return err
	}
	// No counter: the host counted the experts above.
	b.a().Ptr(d.p).Ptr(y.p).Ptr(wt.p).Int(n).Int(k).Int(dnRows).Ptr(it.p).Ptr(0).Int64(0)
	return b.launch(b.k.combine, driver.D1(ceil(n*dnRows, 256)), driver.D1(256), 0)
}

// launchGrouped launches the grouped expert product whose arguments are
// packed: on the tensor cores (64 output rows per block) when they are on,
// else in float32 (32 rows per block).
func (b *Backend) launchGrouped(rows, tiles int) error {
	if b.tensorCores {
		return b.launch(b.k.groupedTC, driver.Dim3{X: uint32(ceil(rows, 64)), Y: uint32(tiles), Z: 1}, driver.D1(128), 0)
	}
	return b.launch(b.k.grouped, driver.Dim3{X: uint32(ceil(rows, 32)), Y: uint32(tiles), Z: 1}, driver.D1(256), 0)
}

// groups is a batch's (token, choice) slots sorted by expert on the
// device: slot numbers in expert order, each expert's first index, and
// tiles of up to 32 slots of one expert (one grouped-kernel block each).
type groups struct {
	slots, offsets, tileExpert, tileFirst driver.DevicePtr
	tiles                                 int
	experts                               int // distinct experts selected
}

func (b *Backend) groupSlots(ids []int32, experts int) (groups, error) {
	offsets := make([]int32, experts+1)
	for _, e := range ids {
		offsets[e+1]++
	}
	for e := range experts {
		offsets[e+1] += offsets[e]
	}
	next := append([]int32(nil), offsets[:experts]...)
	sorted := make([]int32, len(ids))
	for s, e := range ids {
		sorted[next[e]] = int32(s)
		next[e]++
	}
	var te, tf []int32
	var g groups
	for e := range experts {
		for f := offsets[e]; f < offsets[e+1]; f += 32 {
			te, tf = append(te, int32(e)), append(tf, f)
		}
		if offsets[e+1] > offsets[e] {
			g.experts++
		}
	}
	g.tiles = len(te)
	// One staging call: a drain inside a second one would restart the
	// arena under the first.
	all := make([]int32, 0, len(sorted)+len(offsets)+2*len(te))
	all = append(append(append(append(all, sorted...), offsets...), te...), tf...)
	base, err := b.stageInts(all)
	if err != nil {
		return g, err
	}
	at := func(i int) driver.DevicePtr { return base + driver.DevicePtr(4*i) }
	g.slots = at(0)
	g.offsets = at(len(sorted))
	g.tileExpert = at(len(sorted) + len(offsets))
	g.tileFirst = at(len(sorted) + len(offsets) + len(te))
	return g, nil
}

// Argmax returns the index of the largest value of each of the first n
// rows of logits (lowest index on ties), computed on the device.
func (b *Backend) Argmax(dst []int32, logits backend.Tensor, n int) error {
	lt, err := as[*floats]("argmax", logits)
	if err != nil {
		return err
	}
	if n < 0 || n > lt.rows || len(dst) < n {
		return fmt.Errorf("cuda: argmax: %d rows of %v into %d ids", n, lt.Shape(), len(dst))
	}
	out := &b.scratch[0]
	if err := b.ensure(out, int64(4*max(n, 1))); err != nil {
		return err
	}
	b.a().Ptr(out.p).Ptr(lt.p).Int(lt.cols)
	if err := b.launch(b.k.argmax, driver.D1(n), driver.D1(1024), 0); err != nil {
		return err
	}
	return b.read(i32bytes(dst[:n]), out.p)
}

// SampleTopP draws a token from row `row` of logits with temperature and
// nucleus top_p, on the device; u in [0, 1) is the caller's random draw.
func (b *Backend) SampleTopP(logits backend.Tensor, row int, temperature, topP, u float32) (int32, error) {
	lt, err := as[*floats]("sample", logits)
	if err != nil {
		return 0, err
	}
	if row < 0 || row >= lt.rows || !(temperature > 0) || !(topP > 0 && topP <= 1) || !(u >= 0 && u < 1) || math.IsInf(float64(temperature), 0) {
		return 0, fmt.Errorf("cuda: sample: row %d of %v, temperature %g, top_p %g, u %g", row, lt.Shape(), temperature, topP, u)
	}
	out := &b.scratch[0]
	if err := b.ensure(out, 4); err != nil {
		return 0, err
	}
	b.a().Ptr(out.p).Ptr(lt.row(row)).Int(lt.cols).Float32(temperature).Float32(topP).Float32(u)
	if err := b.launch(b.k.topP, driver.D1(1), driver.D1(1024), 0); err != nil {
		return 0, err
	}
	var id [1]int32
	if err := b.read(i32bytes(id[:]), out.p); err != nil {
		return 0, err
	}
	return id[0], nil
}
