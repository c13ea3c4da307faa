package loader

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseHeader feeds arbitrary headers to the parser. b is the start of
// a file (length prefix, header, perhaps some data); dataLen more bytes are
// assumed to follow, so seeds from real files need not carry their data.
// The parser must never panic, and whatever it accepts must be safe to
// slice with.
func FuzzParseHeader(f *testing.F) {
	f.Add(rawSafetensors(`{"a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}}`, nil), uint32(8))
	f.Fuzz(func(t *testing.T, b []byte, dataLen uint32) {
		fileSize := int64(len(b)) + int64(dataLen)
		tensors, dataStart, err := ParseHeader(b, fileSize)
		if err != nil {
			if tensors != nil || dataStart != 0 {
				t.Fatalf("error %v came with results", err)
			}
			return
		}
		if dataStart != 8+int64(binary.LittleEndian.Uint64(b)) || dataStart > fileSize || dataStart > int64(len(b)) {
			t.Fatalf("dataStart %d (file %d bytes, %d given)", dataStart, fileSize, len(b))
		}
		dataSize := fileSize - dataStart
		for i, ti := range tensors {
			if ti.Name == metadataKey {
				t.Fatal("__metadata__ returned as a tensor")
			}
			if i > 0 && strings.Compare(tensors[i-1].Name, ti.Name) >= 0 {
				t.Fatalf("names not strictly sorted: %q then %q", tensors[i-1].Name, ti.Name)
			}
			if ti.DType.Size() == 0 {
				t.Fatalf("%q: accepted unknown dtype %q", ti.Name, ti.DType)
			}
			if ti.Begin < 0 || ti.Begin > ti.End || ti.End > dataSize {
				t.Fatalf("%q: span [%d,%d) outside [0,%d)", ti.Name, ti.Begin, ti.End, dataSize)
			}
			n := int64(ti.DType.Size())
			for _, d := range ti.Shape {
				if d < 0 {
					t.Fatalf("%q: negative dim in %v", ti.Name, ti.Shape)
				}
				// The parser rejects any shape whose running product
				// overflows, so this cannot wrap.
				n *= int64(d)
			}
			if n != ti.Bytes() {
				t.Fatalf("%q: %s %v is %d bytes, span holds %d", ti.Name, ti.DType, ti.Shape, n, ti.Bytes())
			}
		}
		byOff := slices.Clone(tensors)
		slices.SortFunc(byOff, func(a, b TensorInfo) int { return cmpInt64(a.Begin, b.Begin) })
		var end int64
		for _, ti := range byOff {
			if ti.Begin == ti.End {
				continue
			}
			if ti.Begin < end {
				t.Fatalf("%q overlaps a previous tensor", ti.Name)
			}
			end = ti.End
		}
	})
}

// TestFuzzSeeds checks that the checked-in seeds mean what their names say:
// golden-* and valid-* parse, broken-* do not.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParseHeader")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) == 0 {
		t.Fatal("no seeds")
	}
	for _, e := range ents {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if len(lines) != 3 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: not a two-value corpus file", e.Name())
		}
		bs, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(lines[2], "uint32("), ")"), 10, 32)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		_, _, err = ParseHeader([]byte(bs), int64(len(bs))+int64(n))
		if broken := strings.HasPrefix(e.Name(), "broken-"); broken != (err != nil) {
			t.Errorf("%s: err = %v", e.Name(), err)
		}
	}
}
