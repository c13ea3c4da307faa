package analysis

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/gptoss/gptoss/mxfp4"
)

// Scheme names a quantiser compared by Compare.
type Scheme string

// The three schemes, all 4 bits per element plus their scales.
const (
	// MXFP4: E2M1 elements, one E8M0 (power-of-two) scale per 32-block,
	// OCP rounding (mxfp4.EncodeBlock).
	MXFP4 Scheme = "mxfp4"
	// INT4Block: integers −7…7, one absmax scale (amax/7, float) per
	// 32-block.
	INT4Block Scheme = "int4-block32"
	// INT4Row: integers −7…7, one absmax scale per row.
	INT4Row Scheme = "int4-row"
)

// Schemes lists the compared schemes in report order.
func Schemes() []Scheme { return []Scheme{MXFP4, INT4Block, INT4Row} }

// QuantizeMXFP4 sets dst to src encoded and decoded block by block;
// len(src) must be a multiple of 32.
func QuantizeMXFP4(dst, src []float32) {
	var blk [mxfp4.BlockBytes]byte
	for g := 0; g+mxfp4.BlockSize <= len(src); g += mxfp4.BlockSize {
		s := mxfp4.EncodeBlock(blk[:], src[g:g+mxfp4.BlockSize])
		mxfp4.DecodeBlock(dst[g:g+mxfp4.BlockSize], blk[:], s)
	}
}

// QuantizeINT4 sets dst to src quantised symmetrically to the integers
// −7…7 with one absmax scale (amax/7) per group of group elements, rounding
// half away from zero, and dequantised. −8 is left unused so that the
// range is symmetric, as absmax INT4 is usually described.
func QuantizeINT4(dst, src []float32, group int) {
	for g := 0; g < len(src); g += group {
		blk := src[g:min(g+group, len(src))]
		var amax float64
		for _, x := range blk {
			amax = math.Max(amax, math.Abs(float64(x)))
		}
		out := dst[g : g+len(blk)]
		if amax == 0 || math.IsInf(amax, 0) || math.IsNaN(amax) {
			for i, x := range blk {
				out[i] = x * 0 // keeps 0 as 0 and turns ±Inf/NaN into NaN
			}
			continue
		}
		scale := amax / 7
		for i, x := range blk {
			out[i] = float32(math.Round(float64(x)/scale) * scale)
		}
	}
}

// Errors is the error of one scheme over a set of values.
type Errors struct {
	RMSE float64 // sqrt(mean((x−q)²))
	Max  float64 // max |x−q|
	// Flushed is the share of the non-zero inputs that quantise to zero.
	Flushed float64
	// SNRdB is 10·log10(Σx² / Σ(x−q)²); +Inf when the quantisation is exact.
	SNRdB float64
}

// MarshalJSON writes an exact quantisation's infinite SNR as null (JSON has
// no infinity).
func (e Errors) MarshalJSON() ([]byte, error) {
	var snr *float64
	if !math.IsInf(e.SNRdB, 0) && !math.IsNaN(e.SNRdB) {
		snr = &e.SNRdB
	}
	return json.Marshal(struct {
		RMSE    float64  `json:"rmse"`
		Max     float64  `json:"max_error"`
		Flushed float64  `json:"flushed_to_zero"`
		SNRdB   *float64 `json:"snr_db"`
	}{e.RMSE, e.Max, e.Flushed, snr})
}

type errAcc struct {
	n, nonzero, flushed int64
	sig, err, max       float64
}

func (a *errAcc) add(x, q []float32) {
	for i, xv := range x {
		d := float64(xv) - float64(q[i])
		a.sig += float64(xv) * float64(xv)
		a.err += d * d
		a.max = math.Max(a.max, math.Abs(d))
		if xv != 0 {
			a.nonzero++
			if q[i] == 0 {
				a.flushed++
			}
		}
	}
	a.n += int64(len(x))
}

func (a *errAcc) result() Errors {
	e := Errors{Max: a.max, SNRdB: math.Inf(1)}
	if a.n > 0 {
		e.RMSE = math.Sqrt(a.err / float64(a.n))
	}
	if a.nonzero > 0 {
		e.Flushed = float64(a.flushed) / float64(a.nonzero)
	}
	if a.err > 0 {
		e.SNRdB = 10 * math.Log10(a.sig/a.err)
	}
	return e
}

// Comparison is the error of each scheme on the same values.
type Comparison struct {
	Values int64             `json:"values"`
	RowLen int               `json:"row_length"`
	Errors map[Scheme]Errors `json:"errors"`
}

// Comparer accumulates a Comparison row by row, so tensors of any size
// stream through a row's worth of memory.
type Comparer struct {
	rowLen int
	acc    [3]errAcc // in Schemes() order
	q      []float32
}

// NewComparer compares rows of rowLen values (a multiple of 32).
func NewComparer(rowLen int) (*Comparer, error) {
	if rowLen <= 0 || rowLen%mxfp4.BlockSize != 0 {
		return nil, fmt.Errorf("analysis: row length %d is not a positive multiple of %d", rowLen, mxfp4.BlockSize)
	}
	return &Comparer{rowLen: rowLen, q: make([]float32, rowLen)}, nil
}

// AddRow quantises one row with every scheme.
func (c *Comparer) AddRow(row []float32) error {
	if len(row) != c.rowLen {
		return fmt.Errorf("analysis: row of %d values, want %d", len(row), c.rowLen)
	}
	QuantizeMXFP4(c.q, row)
	c.acc[0].add(row, c.q)
	QuantizeINT4(c.q, row, mxfp4.BlockSize)
	c.acc[1].add(row, c.q)
	QuantizeINT4(c.q, row, c.rowLen)
	c.acc[2].add(row, c.q)
	return nil
}

// Result is the comparison so far.
func (c *Comparer) Result() Comparison {
	r := Comparison{Values: c.acc[0].n, RowLen: c.rowLen, Errors: map[Scheme]Errors{}}
	for i, s := range Schemes() {
		r.Errors[s] = c.acc[i].result()
	}
	return r
}

// Compare compares the schemes on values laid out as rows of rowLen.
func Compare(values []float32, rowLen int) (Comparison, error) {
	c, err := NewComparer(rowLen)
	if err != nil {
		return Comparison{}, err
	}
	if len(values)%rowLen != 0 {
		return Comparison{}, fmt.Errorf("analysis: %d values are not whole rows of %d", len(values), rowLen)
	}
	for r := 0; r < len(values); r += rowLen {
		if err := c.AddRow(values[r : r+rowLen]); err != nil {
			return Comparison{}, err
		}
	}
	return c.Result(), nil
}

// ExplanatoryValues is the vector used to explain MXFP4: seven weights
// near 1 and one outlier.
func ExplanatoryValues() []float32 {
	return []float32{1.0, 0.9, 1.1, 0.95, 1.05, 1.0, 0.92, 100.0}
}

// ExplanatoryRow lays ExplanatoryValues out as one row of two 32-blocks:
// the seven small values then 25 zeros in block 0, the outlier then 31
// zeros in block 1. The story ("one absmax scale zeroes the small values,
// MXFP4 keeps them, only the outlier is clipped to 96") needs the outlier
// in another block: inside one shared block MXFP4's scale is 2^4 and 1.0/16
// rounds to 0 as well (see the test). Zero padding keeps the flush-to-zero
// share about the real values only.
func ExplanatoryRow() []float32 {
	v := ExplanatoryValues()
	row := make([]float32, 2*mxfp4.BlockSize)
	copy(row, v[:7])
	row[mxfp4.BlockSize] = v[7]
	return row
}

// SyntheticKinds lists the synthetic value generators.
func SyntheticKinds() []string { return []string{"gaussian", "heavy-tail", "outliers"} }

// syntheticStd is the standard deviation of the generated weights, about
// that of a gpt-oss expert weight (the exact value does not matter: every
// scheme is scale-invariant up to MXFP4's power-of-two steps).
const syntheticStd = 0.02

// Synthetic generates rows·cols values, deterministic in seed:
//   - gaussian: N(0, σ²), σ = 0.02.
//   - heavy-tail: σ·t₃ (Student's t, 3 degrees of freedom: finite variance,
//     polynomial tails).
//   - outliers: gaussian with one value in 1000 (on average) replaced by
//     ±50σ, the pattern of activation-like outlier channels.
func Synthetic(kind string, seed uint64, rows, cols int) ([]float32, error) {
	if rows <= 0 || cols <= 0 {
		return nil, fmt.Errorf("analysis: synthetic %d×%d: sizes must be positive", rows, cols)
	}
	if int64(rows)*int64(cols) > 1<<31 {
		return nil, fmt.Errorf("analysis: synthetic %d×%d is too large", rows, cols)
	}
	r := rand.New(rand.NewPCG(seed, 0x6d786670345f7374)) // "mxfp4_st"
	out := make([]float32, rows*cols)
	switch kind {
	case "gaussian":
		for i := range out {
			out[i] = float32(syntheticStd * r.NormFloat64())
		}
	case "heavy-tail":
		for i := range out {
			z, a, b, c := r.NormFloat64(), r.NormFloat64(), r.NormFloat64(), r.NormFloat64()
			out[i] = float32(syntheticStd * z / math.Sqrt((a*a+b*b+c*c)/3))
		}
	case "outliers":
		for i := range out {
			if r.IntN(1000) == 0 {
				out[i] = float32(50 * syntheticStd)
				if r.IntN(2) == 0 {
					out[i] = -out[i]
				}
			} else {
				out[i] = float32(syntheticStd * r.NormFloat64())
			}
		}
	default:
		return nil, fmt.Errorf("analysis: unknown synthetic kind %q (have %v)", kind, SyntheticKinds())
	}
	return out, nil
}

// CompareTensor compares the schemes on a stored tensor, name being:
//   - an MXFP4 pair's base name (or its blocks name): rows are decoded
//     MXFP4, so MXFP4's own error is zero and the INT4 numbers say what
//     INT4 would lose on weights that MXFP4 represents exactly;
//   - a BF16 or F32 tensor: rows run along the last dimension, which must
//     be a multiple of 32.
//
// maxRows > 0 stops after that many rows.
func CompareTensor(s *Store, name string, maxRows int) (Comparison, error) {
	for _, p := range mxfp4Pairs(s) {
		if name == p.base || name == p.blocks {
			return compareMXFP4(s, p, maxRows)
		}
	}
	t, err := s.Tensor(name)
	if err != nil {
		return Comparison{}, err
	}
	if len(t.Shape) == 0 {
		return Comparison{}, fmt.Errorf("analysis: %s: a scalar has no rows", name)
	}
	cols := t.Shape[len(t.Shape)-1]
	c, err := NewComparer(cols)
	if err != nil {
		return Comparison{}, fmt.Errorf("analysis: %s %v: %w", name, t.Shape, err)
	}
	rows := 1
	for _, d := range t.Shape[:len(t.Shape)-1] {
		rows *= d
	}
	if maxRows > 0 {
		rows = min(rows, maxRows)
	}
	es := t.DType.Size()
	row := make([]float32, cols)
	for r := range rows {
		if err := toFloats(row, t.Data[r*cols*es:(r+1)*cols*es], t.DType); err != nil {
			return Comparison{}, fmt.Errorf("analysis: %s: %w", name, err)
		}
		if err := c.AddRow(row); err != nil {
			return Comparison{}, err
		}
	}
	return c.Result(), nil
}

func compareMXFP4(s *Store, p mxfp4Pair, maxRows int) (Comparison, error) {
	bt, err := s.Tensor(p.blocks)
	if err != nil {
		return Comparison{}, err
	}
	st, err := s.Tensor(p.scales)
	if err != nil {
		return Comparison{}, err
	}
	nb := len(bt.Shape)
	if nb < 2 || bt.Shape[nb-1] != mxfp4.BlockBytes || !slices.Equal(bt.Shape[:nb-1], st.Shape) {
		return Comparison{}, fmt.Errorf("analysis: %s: blocks %v and scales %v are not an MXFP4 pair", p.base, bt.Shape, st.Shape)
	}
	groups := bt.Shape[nb-2]
	c, err := NewComparer(groups * mxfp4.BlockSize)
	if err != nil {
		return Comparison{}, err
	}
	rows := len(st.Data) / groups
	if maxRows > 0 {
		rows = min(rows, maxRows)
	}
	row := make([]float32, groups*mxfp4.BlockSize)
	for r := range rows {
		mxfp4.DecodeRow(row, bt.Data[r*groups*mxfp4.BlockBytes:(r+1)*groups*mxfp4.BlockBytes], st.Data[r*groups:(r+1)*groups])
		if err := c.AddRow(row); err != nil {
			return Comparison{}, err
		}
	}
	return c.Result(), nil
}
