package analysis

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gptoss/gptoss/mxfp4"
)

// The example used to explain MXFP4, laid out as ExplanatoryRow documents:
// INT4 with one absmax scale for the row turns every small value into 0;
// MXFP4 keeps each of them at 1.0 and only clips the outlier to 96.
func TestExplanatoryExample(t *testing.T) {
	row := ExplanatoryRow()
	small := []int{0, 1, 2, 3, 4, 5, 6}
	const outlier = mxfp4.BlockSize

	q := make([]float32, len(row))
	QuantizeINT4(q, row, len(row))
	for _, i := range small {
		if q[i] != 0 {
			t.Errorf("INT4 per row: %g → %g, want 0", row[i], q[i])
		}
	}
	if math.Abs(float64(q[outlier])-100) > 1e-4 {
		t.Errorf("INT4 per row: outlier → %g, want 100", q[outlier])
	}

	QuantizeMXFP4(q, row)
	for _, i := range small {
		if q[i] != 1 {
			t.Errorf("MXFP4: %g → %g, want 1", row[i], q[i])
		}
	}
	if q[outlier] != 96 {
		t.Errorf("MXFP4: outlier → %g, want 96", q[outlier])
	}

	c, err := Compare(row, len(row))
	if err != nil {
		t.Fatal(err)
	}
	mx, blk, rw := c.Errors[MXFP4], c.Errors[INT4Block], c.Errors[INT4Row]
	if rw.Flushed != 7.0/8 || mx.Flushed != 0 || blk.Flushed != 0 {
		t.Errorf("flushed to zero: int4-row %g (want 7/8), mxfp4 %g, int4-block %g (want 0)", rw.Flushed, mx.Flushed, blk.Flushed)
	}
	if mx.Max != 4 {
		t.Errorf("MXFP4 max error %g, want 4 (the clipped outlier)", mx.Max)
	}
	if math.Abs(rw.Max-1.1) > 1e-6 {
		t.Errorf("INT4 per row max error %g, want 1.1 (a small value lost)", rw.Max)
	}
	// MXFP4 error: 100−96 and 0.1, 0.05, 0.05, 0.08 on the small ones.
	wantMX := math.Sqrt((16 + 0.01 + 0.01 + 0.0025 + 0.0025 + 0.0064) / 64)
	if math.Abs(mx.RMSE-wantMX) > 1e-6 {
		t.Errorf("MXFP4 RMSE %g, want %g", mx.RMSE, wantMX)
	}
	// SNR weighs errors by energy, and the outlier holds 99.9% of it: the
	// 4 MXFP4 takes off the outlier costs more than the seven small values
	// INT4 per row loses, so by SNR alone INT4 per row looks better (31.6
	// against 28.0 dB). The flush-to-zero share is what tells them apart.
	if !(blk.SNRdB > rw.SNRdB && rw.SNRdB > mx.SNRdB) {
		t.Errorf("SNR order: int4-block %g, int4-row %g, mxfp4 %g", blk.SNRdB, rw.SNRdB, mx.SNRdB)
	}
}

// Inside one 32-block the shared power-of-two scale is 2^4 (from 100), and
// 1.0/16 rounds to zero: MXFP4 loses the small values as well. The story
// needs the outlier in another block, which is why ExplanatoryRow puts it
// there.
func TestExplanatoryExampleSharedBlock(t *testing.T) {
	blk := make([]float32, mxfp4.BlockSize)
	copy(blk, ExplanatoryValues())
	q := make([]float32, len(blk))
	QuantizeMXFP4(q, blk)
	for i := range 7 {
		if q[i] != 0 {
			t.Errorf("MXFP4 in a shared block: %g → %g, want 0", blk[i], q[i])
		}
	}
	if q[7] != 96 {
		t.Errorf("outlier → %g, want 96", q[7])
	}
}

func TestQuantizeINT4Levels(t *testing.T) {
	src := []float32{-7, -3.4, 0, 0.5, 1.5, 7}
	q := make([]float32, len(src))
	QuantizeINT4(q, src, len(src))
	want := []float32{-7, -3, 0, 1, 2, 7} // half away from zero
	if !slices.Equal(q, want) {
		t.Errorf("got %v, want %v", q, want)
	}
	QuantizeINT4(q, make([]float32, 6), 6)
	if !slices.Equal(q, make([]float32, 6)) {
		t.Errorf("all-zero group: %v", q)
	}
}

func TestSyntheticDeterministicAndShaped(t *testing.T) {
	for _, kind := range SyntheticKinds() {
		a, err := Synthetic(kind, 7, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Synthetic(kind, 7, 16, 64)
		c, _ := Synthetic(kind, 8, 16, 64)
		if !slices.Equal(a, b) || slices.Equal(a, c) {
			t.Errorf("%s: not deterministic in the seed", kind)
		}
	}
	if _, err := Synthetic("uniform", 1, 2, 32); err == nil {
		t.Error("unknown kind accepted")
	}
	// Outliers are what one absmax scale per row handles worst.
	v, _ := Synthetic("outliers", 1, 256, 2880)
	c, err := Compare(v, 2880)
	if err != nil {
		t.Fatal(err)
	}
	if !(c.Errors[MXFP4].SNRdB > c.Errors[INT4Row].SNRdB) || c.Errors[INT4Row].Flushed < 0.3 {
		t.Errorf("outliers: %+v", c.Errors)
	}
}

func TestStatsHistogramsSumToBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	const rows, groups = 40, 6
	src := make([]float32, groups*mxfp4.BlockSize)
	blocks := make([]byte, rows*groups*mxfp4.BlockBytes)
	scales := make([]byte, rows*groups)
	for i := range rows {
		for j := range src {
			src[j] = float32(r.NormFloat64() * math.Exp2(float64(r.IntN(9)-4)))
		}
		mxfp4.EncodeRow(blocks[i*groups*mxfp4.BlockBytes:], scales[i*groups:], src)
	}
	var s Stats
	if err := s.Add(blocks, scales); err != nil {
		t.Fatal(err)
	}
	var nScale, nCode int64
	for _, n := range s.ScaleBytes {
		nScale += n
	}
	for _, n := range s.Codes {
		nCode += n
	}
	if s.Blocks != rows*groups || nScale != s.Blocks || nCode != 32*s.Blocks {
		t.Errorf("blocks %d, scale histogram %d, code histogram %d (want %d, %d, %d)", s.Blocks, nScale, nCode, rows*groups, rows*groups, 32*rows*groups)
	}
	if s.Bytes != int64(len(blocks)+len(scales)) {
		t.Errorf("bytes %d", s.Bytes)
	}
	// Saturation by brute force: the decoded block's largest magnitude is
	// 6 times its scale.
	var sat int64
	dec := make([]float32, mxfp4.BlockSize)
	for g, sc := range scales {
		mxfp4.DecodeBlock(dec, blocks[g*mxfp4.BlockBytes:], sc)
		var amax float32
		for _, v := range dec {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		if amax == 6*mxfp4.Scale(sc) {
			sat++
		}
	}
	if s.Saturated != sat || sat == 0 || sat == s.Blocks {
		t.Errorf("saturated %d, brute force %d of %d", s.Saturated, sat, s.Blocks)
	}
	if err := s.Add(blocks[:10], scales[:1]); err == nil {
		t.Error("mismatched blocks and scales accepted")
	}
}

func TestMatchName(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"", "x", true},
		{"gate_up", "model.layers.0.mlp.experts.gate_up_proj", true},
		{"model.layers.1.*", "model.layers.0.mlp.experts.gate_up_proj", false},
		{"model.layers.*.mlp.experts.down_proj", "model.layers.3.mlp.experts.down_proj", true},
	} {
		if got, err := MatchName(c.pattern, c.name); err != nil || got != c.want {
			t.Errorf("MatchName(%q, %q) = %v, %v", c.pattern, c.name, got, err)
		}
	}
	if _, err := MatchName("[", "x"); err == nil {
		t.Error("bad glob accepted")
	}
}
