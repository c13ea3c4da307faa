package loader

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Paths of the golden fixtures, relative to this package.
const (
	tinyDir      = "../testdata/tiny"
	shapesDir    = "../testdata/shapes"
	shapesOrigin = "../testdata/shapes/original"
)

// encodeSafetensors serialises tensors in the safetensors format, data laid
// out in the given order, header padded with spaces to 8 bytes as the
// reference writer does.
func encodeSafetensors(t testing.TB, tensors []Tensor) []byte {
	t.Helper()
	hdr := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var data []byte
	for _, ts := range tensors {
		shape := ts.Shape
		if shape == nil {
			shape = []int{}
		}
		hdr[ts.Name] = map[string]any{
			"dtype":        ts.DType,
			"shape":        shape,
			"data_offsets": []int{len(data), len(data) + len(ts.Data)},
		}
		data = append(data, ts.Data...)
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	return rawSafetensors(string(js)+strings.Repeat(" ", (8-len(js)%8)%8), data)
}

// rawSafetensors frames an arbitrary header string and data section.
func rawSafetensors(header string, data []byte) []byte {
	var b bytes.Buffer
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
	b.Write(n[:])
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyDir copies the regular files of src (not subdirectories) into dst.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// rewriteSafetensors rewrites path through edit, which receives every tensor
// (data copied out of the mapping) and returns the tensors to write.
func rewriteSafetensors(t testing.TB, path string, edit func([]Tensor) []Tensor) {
	t.Helper()
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []Tensor
	for _, ti := range f.Tensors() {
		x, _ := f.Tensor(ti.Name)
		x.Data = bytes.Clone(x.Data)
		ts = append(ts, x)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, encodeSafetensors(t, edit(ts)))
}

// tempCopy copies a fixture directory into a fresh temporary directory.
func tempCopy(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	copyDir(t, src, dst)
	return dst
}

// editJSON rewrites a JSON object file through edit.
func editJSON(t testing.TB, path string, edit func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, out)
}

// wantErr fails unless err is non-nil and contains every fragment.
func wantErr(t testing.TB, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", fragments)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not contain %q", err, f)
		}
	}
}
