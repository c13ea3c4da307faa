package loader

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseHeaderValid(t *testing.T) {
	b := encodeSafetensors(t, []Tensor{
		{Name: "b", DType: BF16, Shape: []int{2, 3}, Data: make([]byte, 12)},
		{Name: "a", DType: U8, Shape: []int{4}, Data: []byte{1, 2, 3, 4}},
		{Name: "scalar", DType: F32, Shape: []int{}, Data: make([]byte, 4)},
		{Name: "empty", DType: F32, Shape: []int{0, 7}, Data: nil},
	})
	tensors, dataStart, err := ParseHeader(b, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(8 + binary.LittleEndian.Uint64(b)); dataStart != want || dataStart%8 != 0 {
		t.Fatalf("dataStart %d, want %d", dataStart, want)
	}
	var names []string
	for _, ti := range tensors {
		names = append(names, ti.Name)
	}
	if !slices.Equal(names, []string{"a", "b", "empty", "scalar"}) {
		t.Fatalf("names %v, want sorted without __metadata__", names)
	}
	a := tensors[0]
	if a.DType != U8 || !slices.Equal(a.Shape, []int{4}) || a.Begin != 12 || a.End != 16 || a.Bytes() != 4 {
		t.Fatalf("a = %+v", a)
	}
	if got := b[dataStart+a.Begin : dataStart+a.End]; !bytes.Equal(got, []byte{1, 2, 3, 4}) {
		t.Fatalf("a data %v", got)
	}
	// b may be only the header prefix of a larger file.
	if _, _, err := ParseHeader(b[:dataStart], int64(len(b))); err != nil {
		t.Fatalf("header prefix: %v", err)
	}
}

func TestParseHeaderErrors(t *testing.T) {
	entry := func(name, dtype, shape, offs string) string {
		return `"` + name + `":{"dtype":"` + dtype + `","shape":` + shape + `,"data_offsets":` + offs + `}`
	}
	ok := entry("w", "BF16", "[2,2]", "[0,8]")
	huge := make([]byte, 16)
	binary.LittleEndian.PutUint64(huge, 200<<20)
	past := make([]byte, 16)
	binary.LittleEndian.PutUint64(past, 100)

	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "too short"},
		{"zero length", make([]byte, 16), "header length is zero"},
		{"huge length", huge, "exceeds"},
		{"length past end", past, "runs past the end"},
		{"bad JSON", rawSafetensors(`{"w":{"dtype":`, nil), "header JSON"},
		{"not an object", rawSafetensors(`[1,2]`, nil), "not an object"},
		{"trailing garbage", rawSafetensors(`{`+ok+`} x`, make([]byte, 8)), "trailing data"},
		{"unknown dtype", rawSafetensors(`{`+entry("w", "Q4_K", "[2]", "[0,2]")+`}`, make([]byte, 2)), `tensor "w": unknown dtype "Q4_K"`},
		{"missing dtype", rawSafetensors(`{"w":{"shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)), `"w": missing dtype`},
		{"missing shape", rawSafetensors(`{"w":{"dtype":"U8","data_offsets":[0,1]}}`, make([]byte, 1)), `"w": missing shape`},
		{"missing offsets", rawSafetensors(`{"w":{"dtype":"U8","shape":[1]}}`, make([]byte, 1)), `"w": missing data_offsets`},
		{"entry not object", rawSafetensors(`{"w":3}`, nil), `tensor "w"`},
		{"three offsets", rawSafetensors(`{`+entry("w", "U8", "[1]", "[0,1,2]")+`}`, make([]byte, 2)), "3 entries"},
		{"begin after end", rawSafetensors(`{`+entry("w", "U8", "[0]", "[4,2]")+`}`, make([]byte, 4)), "bad data_offsets"},
		{"negative dim", rawSafetensors(`{`+entry("w", "U8", "[-1]", "[0,1]")+`}`, make([]byte, 1)), "bad dimension -1"},
		{"fractional dim", rawSafetensors(`{`+entry("w", "U8", "[1.5]", "[0,1]")+`}`, make([]byte, 1)), `tensor "w"`},
		{"size mismatch", rawSafetensors(`{`+entry("w", "BF16", "[3]", "[0,4]")+`}`, make([]byte, 4)), "needs 6 bytes"},
		{"shape overflow", rawSafetensors(`{`+entry("w", "F64", "[4294967296,4294967296]", "[0,8]")+`}`, make([]byte, 8)), "overflows"},
		{"span past end", rawSafetensors(`{`+ok+`}`, make([]byte, 7)), "run past the 7-byte data section"},
		{"overlap", rawSafetensors(`{`+ok+`,`+entry("v", "U8", "[4]", "[6,10]")+`}`, make([]byte, 10)), `"v" bytes [6,10) overlap tensor "w"`},
		{"duplicate key", rawSafetensors(`{`+ok+`,`+ok+`}`, make([]byte, 8)), `duplicate key "w"`},
		{"bad metadata", rawSafetensors(`{"__metadata__":{"n":1},`+ok+`}`, make([]byte, 8)), "__metadata__"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseHeader(tc.b, int64(len(tc.b)))
			wantErr(t, err, tc.want)
		})
	}
}

func TestParseHeaderEdgeCasesAccepted(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		dataLen      int
	}{
		{"empty object", `{}`, 0},
		{"metadata only", `{"__metadata__":{"format":"pt"}}`, 0},
		{"null metadata", `{"__metadata__":null}`, 0},
		{"zero-size tensors share an offset", `{"a":{"dtype":"U8","shape":[0],"data_offsets":[2,2]},"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}`, 4},
		{"unused trailing data", `{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 100},
		{"unknown entry key", `{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":true}}`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := rawSafetensors(tc.header, make([]byte, tc.dataLen))
			if _, _, err := ParseHeader(b, int64(len(b))); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOpenFileTiny(t *testing.T) {
	path := filepath.Join(tinyDir, "model.safetensors")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata %v", f.Metadata)
	}
	infos := f.Tensors()
	if len(infos) != 3+4*19 {
		t.Fatalf("%d tensors, want %d", len(infos), 3+4*19)
	}
	if !slices.IsSortedFunc(infos, func(a, b TensorInfo) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("Tensors not sorted by name")
	}
	_, dataStart, err := ParseHeader(raw, int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range infos {
		ts, ok := f.Tensor(ti.Name)
		if !ok {
			t.Fatalf("Tensor(%q) missing", ti.Name)
		}
		if !bytes.Equal(ts.Data, raw[dataStart+ti.Begin:dataStart+ti.End]) {
			t.Fatalf("%s: data differs from the file bytes", ti.Name)
		}
		if cap(ts.Data) != len(ts.Data) {
			t.Fatalf("%s: capacity %d exceeds length %d, an append would overwrite a neighbour", ti.Name, cap(ts.Data), len(ts.Data))
		}
	}
	q, _ := f.Tensor("model.layers.0.self_attn.q_proj.weight")
	if q.DType != BF16 || !slices.Equal(q.Shape, []int{64, 64}) {
		t.Errorf("q_proj %s %v", q.DType, q.Shape)
	}
	if _, ok := f.Tensor("nope"); ok {
		t.Error("Tensor(nope) found")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, ok := f.Tensor(q.Name); ok {
		t.Error("Tensor after Close returned data")
	}
}

func TestOpenFileErrors(t *testing.T) {
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join(tinyDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	ok := `{"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}`
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty.safetensors", nil, "empty file"},
		{"short.safetensors", []byte{1, 0, 0}, "too short"},
		{"truncated.safetensors", raw[:len(raw)/2], "past the"},
		{"truncated-header.safetensors", raw[:100], "runs past the end"},
		{"badjson.safetensors", rawSafetensors(`{"w":{"dtype":"BF16",`, nil), "header JSON"},
		{"dtype.safetensors", rawSafetensors(strings.Replace(ok, "BF16", "BF17", 1), make([]byte, 4)), `unknown dtype "BF17"`},
		{"overlap.safetensors", rawSafetensors(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[3,7]}}`, make([]byte, 8)), "overlap"},
		{"pastend.safetensors", rawSafetensors(ok, make([]byte, 3)), "run past"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			writeFile(t, path, tc.b)
			f, err := OpenFile(path)
			if err == nil {
				f.Close()
			}
			wantErr(t, err, "loader: "+path+": ", tc.want)
		})
	}
	_, err = OpenFile(filepath.Join(dir, "absent.safetensors"))
	wantErr(t, err, "absent.safetensors")
	_, err = OpenFile(dir)
	wantErr(t, err, dir)
}

// The overflow check must also hold for products that wrap to small
// positive numbers, not only for ones that go negative.
func TestParseHeaderWrappingShape(t *testing.T) {
	d := int64(math.MaxInt64/2 + 2) // 2·d wraps around
	h := `{"w":{"dtype":"BF16","shape":[` + strconv.FormatInt(d, 10) + `,2],"data_offsets":[0,4]}}`
	b := rawSafetensors(h, make([]byte, 4))
	_, _, err := ParseHeader(b, int64(len(b)))
	wantErr(t, err, "overflows")
}
