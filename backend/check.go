package backend

import (
	"fmt"

	"github.com/gptoss/gptoss/mxfp4"
)

// The shape checks every backend runs on its operands before an op, on
// plain sizes so that checking allocates nothing. A backend converts its
// tensors to Dims (or passes a weight's stored shape) and prefixes the
// error with its name ("cpu: ", "cuda: ").

// Dims is an activation tensor's size: rows of cols float32 (or int32).
type Dims struct{ Rows, Cols int }

func (d Dims) String() string { return fmt.Sprintf("[%d %d]", d.Rows, d.Cols) }

// checkRows reports whether n rows of every tensor exist.
func checkRows(op string, n int, ts ...Dims) error {
	for _, t := range ts {
		if n < 0 || n > t.Rows {
			return fmt.Errorf("%s: %d rows requested, tensor has %d", op, n, t.Rows)
		}
	}
	return nil
}

// CheckEmbed checks Embed of tokens from a [vocab, width] table into dst.
func CheckEmbed(dst Dims, vocab, width int, tokens []int32) error {
	if dst.Cols != width || len(tokens) > dst.Rows {
		return fmt.Errorf("embed: %d tokens of width %d into %v", len(tokens), width, dst)
	}
	for _, t := range tokens {
		if t < 0 || int(t) >= vocab {
			return fmt.Errorf("embed: token %d outside the vocabulary of %d", t, vocab)
		}
	}
	return nil
}

// CheckRMSNorm checks RMSNorm of n rows of x into dst with a gain of
// gain values.
func CheckRMSNorm(n int, dst, x Dims, gain int) error {
	if err := checkRows("rmsnorm", n, dst, x); err != nil {
		return err
	}
	if dst.Cols != x.Cols || gain != x.Cols {
		return fmt.Errorf("rmsnorm: widths %d, %d and gain %d differ", dst.Cols, x.Cols, gain)
	}
	return nil
}

// CheckLinear checks Linear of n rows of x by an [out, in] matrix into
// dst; bias is the bias's length, or -1 without one.
func CheckLinear(n int, dst, x Dims, out, in, bias int) error {
	if bias >= 0 && bias != out {
		return fmt.Errorf("linear: bias of %d for %d outputs", bias, out)
	}
	if err := checkRows("linear", n, dst, x); err != nil {
		return err
	}
	if x.Cols != in || dst.Cols != out {
		return fmt.Errorf("linear: %v × [%d %d] into %v", x, out, in, dst)
	}
	return nil
}

// CheckAdd checks Add of n rows of x to dst.
func CheckAdd(n int, dst, x Dims) error {
	if err := checkRows("add", n, dst, x); err != nil {
		return err
	}
	if dst.Cols != x.Cols {
		return fmt.Errorf("add: widths %d and %d differ", dst.Cols, x.Cols)
	}
	return nil
}

// CheckRoPE checks RoPE of heads heads of headDim in x over segs.
func CheckRoPE(x Dims, heads, headDim int, segs []Segment) error {
	if heads <= 0 || heads*headDim != x.Cols {
		return fmt.Errorf("rope: %d heads of %d in width %d", heads, headDim, x.Cols)
	}
	for _, s := range segs {
		if s.Row < 0 || s.Len < 0 || s.Row+s.Len > x.Rows {
			return fmt.Errorf("rope: segment rows %d+%d past %d", s.Row, s.Len, x.Rows)
		}
	}
	return nil
}

// CheckTopK checks TopK of k of n rows of logits into idx and weights.
func CheckTopK(k, n int, idx, weights, logits Dims) error {
	if err := checkRows("topk", n, weights, logits); err != nil {
		return err
	}
	if k <= 0 || k > logits.Cols || idx.Cols != k || weights.Cols != k || n > idx.Rows {
		return fmt.Errorf("topk: k=%d of %d into %v and %v", k, logits.Cols, idx, weights)
	}
	return nil
}

// CheckCopyRows checks CopyRows of src's rows into dst.
func CheckCopyRows(dst, src Dims, rows []int) error {
	if dst.Cols != src.Cols || len(rows) > dst.Rows {
		return fmt.Errorf("copyrows: %d rows of %v into %v", len(rows), src, dst)
	}
	for _, r := range rows {
		if r < 0 || r >= src.Rows {
			return fmt.Errorf("copyrows: row %d outside [0, %d)", r, src.Rows)
		}
	}
	return nil
}

// CheckMoE checks MoE of n rows of x into dst, with idx and weights the
// routing (k columns) and the experts' stored shapes gateUp and down
// ([experts, rows, blocks of 32 columns, 16 bytes]).
func CheckMoE(n int, dst, x, idx, weights Dims, gateUp, down []int) error {
	if err := checkRows("moe", n, dst, x, weights); err != nil {
		return err
	}
	if len(gateUp) < 3 || len(down) < 3 {
		return fmt.Errorf("moe: expert shapes %v and %v", gateUp, down)
	}
	guRows, guCols := gateUp[1], gateUp[2]*mxfp4.BlockSize
	dnRows, dnCols := down[1], down[2]*mxfp4.BlockSize
	if down[0] != gateUp[0] || guCols != x.Cols || guRows != 2*dnCols || dnRows != dst.Cols || idx.Cols != weights.Cols || n > idx.Rows {
		return fmt.Errorf("moe: gate_up %v, down %v, x %v, out %v disagree", gateUp, down, x, dst)
	}
	return nil
}

// CheckAttention checks Attention's operands against heads query heads
// (one sink each) and the segments' rows, and returns the head width and
// the kv-head count. The caches are the backend's to check.
func CheckAttention(out, q, k, v Dims, heads int, segs []Segment) (headDim, kvHeads int, err error) {
	if heads <= 0 || q.Cols%heads != 0 || out.Cols != q.Cols || k.Cols != v.Cols {
		return 0, 0, fmt.Errorf("attention: q %v, k %v, v %v, out %v, %d sinks disagree", q, k, v, out, heads)
	}
	hd := q.Cols / heads
	if hd == 0 || k.Cols%hd != 0 || k.Cols == 0 || heads%(k.Cols/hd) != 0 {
		return 0, 0, fmt.Errorf("attention: kv width %d does not divide into heads of %d for %d query heads", k.Cols, hd, heads)
	}
	for _, s := range segs {
		if s.Row < 0 || s.Len < 0 {
			return 0, 0, fmt.Errorf("attention: segment rows %d+%d", s.Row, s.Len)
		}
		if err := checkRows("attention", s.Row+s.Len, out, q, k, v); err != nil {
			return 0, 0, err
		}
	}
	return hd, k.Cols / hd, nil
}
