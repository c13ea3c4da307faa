package loader

import (
	"cmp"
	"os"
	"slices"
	"testing"
)

// EncodeHeader writes what ParseHeader reads, byte for byte like the
// golden fixture's writer.
func TestEncodeHeaderRoundTrip(t *testing.T) {
	f, err := OpenFile("../testdata/tiny/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	infos := f.Tensors()
	// The fixture lists tensors in data order; rebuild its header from that.
	slices.SortFunc(infos, func(a, b TensorInfo) int { return cmp.Compare(a.Begin, b.Begin) })
	var es []HeaderEntry
	for _, ti := range infos {
		shape := make([]int64, len(ti.Shape))
		for i, d := range ti.Shape {
			shape[i] = int64(d)
		}
		es = append(es, HeaderEntry{Name: ti.Name, DType: ti.DType, Shape: shape})
	}
	h, err := EncodeHeader(es)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../testdata/tiny/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if string(raw[:len(h)]) != string(h) {
		t.Fatalf("header differs from the fixture's:\n%s\n%s", h[8:], raw[8:len(h)])
	}
	if _, err := EncodeHeader([]HeaderEntry{{Name: "x", DType: "Q4", Shape: []int64{1}}}); err == nil {
		t.Fatal("unknown dtype accepted")
	}
}
