package mxfp4

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestValueTable(t *testing.T) {
	want := []float64{0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6}
	for c, w := range want {
		v := Value(uint8(c))
		if float64(v) != w {
			t.Errorf("Value(%d) = %v, want %v", c, v, w)
		}
		if math.Signbit(float64(v)) != (c >= 8) {
			t.Errorf("Value(%d) = %v has the wrong sign bit", c, v)
		}
	}
	// Only the low nibble counts.
	if Value(0x17) != 6 {
		t.Errorf("Value(0x17) = %v, want 6", Value(0x17))
	}
}

func TestScale(t *testing.T) {
	for e := 0; e < 255; e++ {
		got := float64(Scale(uint8(e)))
		if want := math.Ldexp(1, e-127); got != want {
			t.Errorf("Scale(%d) = %g, want %g", e, got, want)
		}
	}
	if s := Scale(255); !math.IsInf(float64(s), 1) {
		t.Errorf("Scale(255) = %v, want +Inf (2^128 overflows float32)", s)
	}
}

func TestEveryCodeRoundTrips(t *testing.T) {
	// Put code c next to a 6 (code 7) so the block's exponent is pinned to
	// the scale byte, then check encode(decode) returns the same bytes.
	// Scales above 252 are left out: 6·2^(253−127) overflows float32.
	for _, sc := range []uint8{0, 1, 100, 127, 140, 252} {
		for c := 0; c < 16; c++ {
			var blk [BlockBytes]byte
			blk[0] = 0x07 | uint8(c)<<4
			for j := 1; j < BlockBytes; j++ {
				blk[j] = uint8(c) | uint8(c)<<4
			}
			var f [BlockSize]float32
			DecodeBlock(f[:], blk[:], sc)
			if got, want := float64(f[1]), float64(Value(uint8(c)))*math.Ldexp(1, int(sc)-127); got != want {
				t.Fatalf("scale %d code %d decodes to %g, want %g", sc, c, got, want)
			}
			var out [BlockBytes]byte
			if s := EncodeBlock(out[:], f[:]); s != sc || out != blk {
				t.Errorf("scale %d code %d: re-encoded to scale %d % x, want %d % x", sc, c, s, out, sc, blk)
			}
		}
	}
}

// encodeOne encodes x in a block whose amax is 4 (exponent 0), so x is
// quantised on the unscaled E2M1 grid.
func encodeOne(x float32) (code uint8, scale uint8) {
	var src [BlockSize]float32
	src[0] = 4
	src[1] = x
	var dst [BlockBytes]byte
	s := EncodeBlock(dst[:], src[:])
	return dst[0] >> 4, s
}

func TestRoundToNearestEven(t *testing.T) {
	neg0 := float32(math.Copysign(0, -1))
	cases := []struct {
		x    float32
		want uint8
	}{
		{0, 0}, {neg0, 8},
		{0.25, 0}, {0.2500001, 1}, {0.5, 1}, {0.75, 2}, {0.7499999, 1},
		{1, 2}, {1.25, 2}, {1.2500001, 3}, {1.5, 3}, {1.75, 4}, {1.7499999, 3},
		{2, 4}, {2.5, 4}, {2.5000002, 5}, {3, 5}, {3.5, 6}, {3.4999998, 5},
		{4, 6}, {5, 6}, {5.0000005, 7}, {6, 7},
		{-0.25, 8}, {-0.1, 8}, {-0.75, 10}, {-2.5, 12}, {-3.5, 14}, {-5, 14}, {-6, 15},
	}
	for _, c := range cases {
		code, s := encodeOne(c.x)
		if s != 127 {
			t.Fatalf("amax 4 gave scale %d, want 127", s)
		}
		if code != c.want {
			t.Errorf("encode(%v) = code %d (%v), want %d (%v)", c.x, code, Value(code), c.want, Value(c.want))
		}
	}
}

func TestSaturation(t *testing.T) {
	// amax 7.9 → floor(log2) = 2 → exponent 0; 7.9 and 6.5 saturate to 6.
	var src [BlockSize]float32
	src[0], src[1], src[2] = 7.9, -6.5, 5.5
	var dst [BlockBytes]byte
	if s := EncodeBlock(dst[:], src[:]); s != 127 {
		t.Fatalf("scale %d, want 127", s)
	}
	if dst[0] != 0x07|0x0F<<4 || dst[1]&0x0F != 7 {
		t.Errorf("codes % x, want 7 f 7", dst[:2])
	}
	// amax exactly 8 moves to the next exponent: 8/2 = 4.
	src[0] = 8
	if s := EncodeBlock(dst[:], src[:]); s != 128 || dst[0]&0x0F != 6 {
		t.Errorf("amax 8: scale %d code %d, want 128 6", s, dst[0]&0x0F)
	}
}

func TestZerosAndNegZero(t *testing.T) {
	var src [BlockSize]float32
	dst := bytes.Repeat([]byte{0xAA}, BlockBytes)
	if s := EncodeBlock(dst, src[:]); s != 0 || !bytes.Equal(dst, make([]byte, BlockBytes)) {
		t.Errorf("all-zero block: scale %d codes % x, want 0 and zeros", s, dst)
	}
	neg0 := float32(math.Copysign(0, -1))
	for i := range src {
		src[i] = neg0
	}
	if s := EncodeBlock(dst, src[:]); s != 0 || !bytes.Equal(dst, bytes.Repeat([]byte{0x88}, BlockBytes)) {
		t.Errorf("all −0 block: scale %d codes % x, want 0 and 0x88s", s, dst)
	}
	var f [BlockSize]float32
	DecodeBlock(f[:], dst, 0)
	for i, v := range f {
		if v != 0 || !math.Signbit(float64(v)) {
			t.Fatalf("decoded −0 block [%d] = %v", i, v)
		}
	}
}

func TestHugeAndTiny(t *testing.T) {
	var src [BlockSize]float32
	var dst [BlockBytes]byte
	var f [BlockSize]float32

	// 1e38: floor(log2) = 126 → exponent 124; 1e38/2^124 ≈ 4.70 → 4.
	for i := range src {
		src[i] = 1e38
	}
	s := EncodeBlock(dst[:], src[:])
	DecodeBlock(f[:], dst[:], s)
	if s != 124+127 || f[0] != float32(math.Ldexp(4, 124)) {
		t.Errorf("1e38 block: scale %d decodes to %g", s, f[0])
	}
	// MaxFloat32 = 2^128−ε: floor(log2) = 127 → exponent 125 (not clamped);
	// it saturates to 6 and 1e38/2^125 ≈ 2.35 rounds to 2.
	src[1] = -math.MaxFloat32
	s = EncodeBlock(dst[:], src[:])
	DecodeBlock(f[:], dst[:], s)
	if s != 125+127 || f[0] != float32(math.Ldexp(2, 125)) || f[1] != float32(math.Ldexp(-6, 125)) {
		t.Errorf("MaxFloat32 block: scale %d decodes to %g %g", s, f[0], f[1])
	}

	// 1e-40 is a float32 subnormal; the exponent clamps to −127 and
	// 1e-40·2^127 ≈ 0.017 rounds to zero.
	for i := range src {
		src[i] = 1e-40
	}
	src[3] = -1e-40
	if s := EncodeBlock(dst[:], src[:]); s != 0 {
		t.Errorf("tiny block scale %d, want 0", s)
	}
	for j, b := range dst {
		want := uint8(0)
		if j == 1 {
			want = 0x80
		}
		if b != want {
			t.Errorf("tiny block byte %d = %#x, want %#x", j, b, want)
		}
	}

	// Smallest exponent, values still representable: 2^-126 = 2·2^-127.
	src = [BlockSize]float32{float32(math.Ldexp(1, -126)), float32(math.Ldexp(1, -128))}
	s = EncodeBlock(dst[:], src[:])
	DecodeBlock(f[:], dst[:], s)
	if s != 0 || f[0] != src[0] || f[1] != src[1] {
		t.Errorf("2^-126, 2^-128: scale %d decodes to %g %g", s, f[0], f[1])
	}
}

func TestNaNAndInf(t *testing.T) {
	var src [BlockSize]float32
	var dst [BlockBytes]byte
	var f [BlockSize]float32
	src[0], src[5] = 1, float32(math.NaN())
	if s := EncodeBlock(dst[:], src[:]); s != NaNScale || dst != [BlockBytes]byte{} {
		t.Errorf("NaN block: scale %d codes % x", s, dst)
	}
	DecodeBlock(f[:], dst[:], NaNScale)
	for i, v := range f {
		if v == v {
			t.Fatalf("NaN block decoded [%d] = %v, want NaN", i, v)
		}
	}
	src = [BlockSize]float32{float32(math.Inf(-1)), 1}
	if s := EncodeBlock(dst[:], src[:]); s != 254 || dst[0] != 0x0F {
		t.Errorf("-Inf block: scale %d byte0 %#x, want 254 0x0f", s, dst[0])
	}
	DecodeBlock(f[:], dst[:], 254)
	if !math.IsInf(float64(f[0]), -1) || f[1] != 0 {
		t.Errorf("-Inf block decodes to %v %v", f[0], f[1])
	}
}

// halfStep is the largest rounding error for a scaled magnitude q: half the
// E2M1 grid spacing around q, or the distance to 6 when q saturates.
func halfStep(q float64) float64 {
	switch {
	case q <= 2:
		return 0.25
	case q <= 4:
		return 0.5
	case q <= 6:
		return 1
	default:
		return q - 6 // saturation band (6, 8): the OCP rule clips, up to 2
	}
}

func TestRandomRoundTripError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const rows, cols = 64, 256
	src := make([]float32, cols)
	blocks := make([]byte, cols/2)
	scales := make([]byte, cols/32)
	dec := make([]float32, cols)
	for row := 0; row < rows; row++ {
		mag := math.Ldexp(1, r.IntN(60)-30)
		for i := range src {
			src[i] = float32(r.NormFloat64() * mag)
		}
		EncodeRow(blocks, scales, src)
		DecodeRow(dec, blocks, scales)
		for i, x := range src {
			step := math.Ldexp(1, int(scales[i/32])-127)
			q := math.Abs(float64(x)) / step
			if err := math.Abs(float64(x) - float64(dec[i])); err > halfStep(q)*step {
				t.Fatalf("row %d [%d]: %g → %g, error %g > %g", row, i, x, dec[i], err, halfStep(q)*step)
			}
			if q >= 8 {
				t.Fatalf("row %d [%d]: scaled magnitude %g ≥ 8", row, i, q)
			}
		}
		// The largest element of each block lands in [4, 8) after scaling.
		for g := 0; g < cols/32; g++ {
			var amax float64
			for _, x := range src[g*32 : g*32+32] {
				amax = max(amax, math.Abs(float64(x)))
			}
			if q := amax / math.Ldexp(1, int(scales[g])-127); q < 4 || q >= 8 {
				t.Fatalf("row %d block %d: amax/scale = %g, want [4, 8)", row, g, q)
			}
		}
	}
}

// tensorInfo is one entry of a safetensors header.
type tensorInfo struct {
	DType       string `json:"dtype"`
	Shape       []int  `json:"shape"`
	DataOffsets [2]int `json:"data_offsets"`
	data        []byte `json:"-"`
}

// readSafetensors parses a safetensors file without the loader package
// (written concurrently) so this test stands alone.
func readSafetensors(t *testing.T, path string) map[string]*tensorInfo {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b[:8])
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		t.Fatalf("%s: header: %v", path, err)
	}
	out := map[string]*tensorInfo{}
	data := b[8+n:]
	for name, msg := range raw {
		if name == "__metadata__" {
			continue
		}
		var ti tensorInfo
		if err := json.Unmarshal(msg, &ti); err != nil {
			t.Fatalf("%s: %s: %v", path, name, err)
		}
		ti.data = data[ti.DataOffsets[0]:ti.DataOffsets[1]]
		out[name] = &ti
	}
	return out
}

// TestGoldenRoundTrip decodes every expert tensor of the golden fixtures
// and re-encodes it: the fixtures were quantised by the OCP rule, so the
// bytes must come back identical.
func TestGoldenRoundTrip(t *testing.T) {
	// Group shards by directory: a blocks tensor and its scales may sit in
	// different shards.
	files, _ := filepath.Glob("../testdata/*/model*.safetensors")
	orig, _ := filepath.Glob("../testdata/*/original/model*.safetensors")
	files = append(files, orig...)
	if len(files) == 0 {
		t.Skip("no golden fixtures under ../testdata")
	}
	dirs := map[string]map[string]*tensorInfo{}
	for _, f := range files {
		d := filepath.Dir(f)
		if dirs[d] == nil {
			dirs[d] = map[string]*tensorInfo{}
		}
		for n, ti := range readSafetensors(t, f) {
			dirs[d][n] = ti
		}
	}
	pairs := 0
	for f, ts := range dirs {
		names := make([]string, 0, len(ts))
		for n := range ts {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, bn := range names {
			var sn string
			switch {
			case strings.HasSuffix(bn, "_blocks"):
				sn = strings.TrimSuffix(bn, "_blocks") + "_scales"
			case strings.HasSuffix(bn, ".blocks"):
				sn = strings.TrimSuffix(bn, ".blocks") + ".scales"
			default:
				continue
			}
			bt, st := ts[bn], ts[sn]
			if st == nil {
				t.Fatalf("%s: %s has no %s", f, bn, sn)
			}
			if bt.DType != "U8" || st.DType != "U8" || bt.Shape[len(bt.Shape)-1] != 16 {
				t.Fatalf("%s: %s %v / %s %v", bn, bt.DType, bt.Shape, st.DType, st.Shape)
			}
			g := bt.Shape[len(bt.Shape)-2]
			rows := len(st.data) / g
			vals := make([]float32, g*32)
			blk := make([]byte, g*16)
			sc := make([]byte, g)
			mism := 0
			for r := 0; r < rows; r++ {
				wantB, wantS := bt.data[r*g*16:(r+1)*g*16], st.data[r*g:(r+1)*g]
				DecodeRow(vals, wantB, wantS)
				EncodeRow(blk, sc, vals)
				if !bytes.Equal(blk, wantB) || !bytes.Equal(sc, wantS) {
					if mism < 3 {
						t.Errorf("%s %s row %d: re-encoded\n  %x %x\nwant\n  %x %x", f, bn, r, sc, blk, wantS, wantB)
					}
					mism++
				}
			}
			if mism > 0 {
				t.Errorf("%s %s: %d of %d rows differ", f, bn, mism, rows)
			}
			pairs++
		}
	}
	if pairs == 0 {
		t.Fatal("no expert tensors found in the fixtures")
	}
	t.Logf("%d blocks/scales tensor pairs round-trip exactly", pairs)
}

func BenchmarkDecodeRow(b *testing.B) {
	// One gpt-oss expert row: 2880 inputs = 90 blocks.
	const g = 90
	r := rand.New(rand.NewPCG(3, 4))
	src := make([]float32, g*32)
	for i := range src {
		src[i] = float32(r.NormFloat64() * 0.02)
	}
	blocks := make([]byte, g*16)
	scales := make([]byte, g)
	EncodeRow(blocks, scales, src)
	dst := make([]float32, g*32)
	b.SetBytes(int64(len(blocks) + len(scales)))
	for b.Loop() {
		DecodeRow(dst, blocks, scales)
	}
}

func BenchmarkEncodeRow(b *testing.B) {
	const g = 90
	r := rand.New(rand.NewPCG(3, 4))
	src := make([]float32, g*32)
	for i := range src {
		src[i] = float32(r.NormFloat64() * 0.02)
	}
	blocks := make([]byte, g*16)
	scales := make([]byte, g)
	b.SetBytes(int64(len(src) * 4))
	for b.Loop() {
		EncodeRow(blocks, scales, src)
	}
}

// TestFastRoundingMatchesRule checks the branch-free roundElem against the
// plain comparison chain (encodeElem) on every float32 within 64 ulps of
// each rounding threshold and on a dense sample of [0, 8).
func TestFastRoundingMatchesRule(t *testing.T) {
	check := func(f float32) {
		for _, q := range []float64{float64(f), -float64(f)} {
			if got, want := roundElem(q), encodeElem(q); got != want {
				t.Fatalf("q = %v (%#08x): roundElem %d, encodeElem %d", q, math.Float32bits(f), got, want)
			}
		}
	}
	for _, th := range []float32{0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8} {
		b := math.Float32bits(th)
		for d := uint32(0); d <= 64; d++ {
			check(math.Float32frombits(b + d))
			if b >= d && th < 8 {
				check(math.Float32frombits(b - d))
			}
		}
	}
	for b := uint32(0); b < math.Float32bits(8); b += 997 {
		check(math.Float32frombits(b))
	}
}

// TestScaleMatchesFrexp checks the exponent-field shortcut against
// floor(log2(amax)) computed with math.Frexp on float64.
func TestScaleMatchesFrexp(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var src [BlockSize]float32
	var dst [BlockBytes]byte
	vals := []float32{math.MaxFloat32, 1, 1.9999999, 2, 0.5, math.SmallestNonzeroFloat32,
		float32(math.Ldexp(1, -126)), float32(math.Ldexp(1, -125)), float32(math.Ldexp(1.5, -124))}
	for i := 0; i < 10000; i++ {
		vals = append(vals, math.Float32frombits(r.Uint32N(0x7F800000))) // every finite magnitude
	}
	for _, v := range vals {
		src[7] = v
		src[8] = -v / 3
		_, e := math.Frexp(float64(v))
		want := max(-127, min(127, e-1-2)) + 127
		if got := EncodeBlock(dst[:], src[:]); int(got) != want {
			t.Fatalf("amax %g: scale %d, want %d", v, got, want)
		}
	}
}
