package loader

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// maxHeaderLen bounds the JSON header. Real headers are tens of KiB (the 120b
// original/ shards stay well under 1 MiB); anything near this is corrupt, and
// the bound keeps a hostile length prefix from making us parse garbage.
const maxHeaderLen = 100 << 20

// metadataKey is the one header key that is not a tensor.
const metadataKey = "__metadata__"

// Size returns the size in bytes of one element of d, or 0 when d is not a
// dtype this package knows. Besides the gpt-oss dtypes it knows the other
// whole-byte safetensors dtypes, so a file carrying an unrelated F8 or U32
// tensor still opens (the tensor is then simply never mapped to a weight).
func (d DType) Size() int {
	switch d {
	case U8, I8, BOOL, "F8_E4M3", "F8_E5M2", "F8_E8M0":
		return 1
	case BF16, F16, I16, "U16":
		return 2
	case F32, I32, "U32":
		return 4
	case F64, I64, "U64":
		return 8
	}
	return 0
}

// TensorInfo describes one tensor of a safetensors header. Begin and End are
// byte offsets relative to the start of the data section.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	Begin int64
	End   int64
}

// Bytes is the stored size of the tensor.
func (ti TensorInfo) Bytes() int64 { return ti.End - ti.Begin }

// ParseHeader parses and validates a safetensors header. b must hold at least
// the 8-byte length prefix and the JSON header (it may be the whole file);
// fileSize is the size of the whole file, which bounds the data section.
// It returns the tensors sorted by name and the absolute offset of the data
// section. Every accepted header satisfies: known dtypes, non-negative dims,
// element count × dtype size == End−Begin, 0 ≤ Begin ≤ End ≤ fileSize−dataStart,
// and no two tensors share a byte.
func ParseHeader(b []byte, fileSize int64) (tensors []TensorInfo, dataStart int64, err error) {
	tensors, _, dataStart, err = parseHeader(b, fileSize)
	return tensors, dataStart, err
}

// rawTensor is one header entry as written. Pointers tell a missing key from
// a zero value.
type rawTensor struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

func parseHeader(b []byte, fileSize int64) ([]TensorInfo, map[string]string, int64, error) {
	if fileSize < 8 || len(b) < 8 {
		return nil, nil, 0, fmt.Errorf("file too short for a safetensors header (%d bytes, need at least 8)", fileSize)
	}
	n := binary.LittleEndian.Uint64(b[:8])
	switch {
	case n == 0:
		return nil, nil, 0, errors.New("header length is zero")
	case n > maxHeaderLen:
		return nil, nil, 0, fmt.Errorf("header length %d exceeds the %d-byte limit (corrupt or not a safetensors file)", n, maxHeaderLen)
	case int64(n) > fileSize-8:
		return nil, nil, 0, fmt.Errorf("header length %d runs past the end of the %d-byte file (truncated?)", n, fileSize)
	case uint64(len(b)-8) < n:
		return nil, nil, 0, fmt.Errorf("header length %d but only %d header bytes given", n, len(b)-8)
	}
	dataStart := 8 + int64(n)
	dataLen := fileSize - dataStart

	// A token-level walk of the top-level object, rather than unmarshalling
	// into a map, so that duplicate keys are caught instead of silently
	// letting the last one win.
	dec := json.NewDecoder(bytes.NewReader(b[8:dataStart]))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, 0, fmt.Errorf("header JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, 0, errors.New("header JSON is not an object")
	}
	var (
		tensors  []TensorInfo
		metadata map[string]string
		seen     = map[string]bool{}
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, 0, fmt.Errorf("header JSON: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, 0, fmt.Errorf("header JSON: unexpected %v where a key belongs", tok)
		}
		if seen[name] {
			return nil, nil, 0, fmt.Errorf("header: duplicate key %q", name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, 0, fmt.Errorf("header JSON at %q: %w", name, err)
		}
		if name == metadataKey {
			if err := json.Unmarshal(raw, &metadata); err != nil {
				return nil, nil, 0, fmt.Errorf("header: %s must map strings to strings: %w", metadataKey, err)
			}
			continue
		}
		ti, err := parseTensorEntry(name, raw, dataLen)
		if err != nil {
			return nil, nil, 0, err
		}
		tensors = append(tensors, ti)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, nil, 0, fmt.Errorf("header JSON: %w", err)
	}
	// Writers pad the header with spaces to align the data; anything else
	// after the object means the length prefix or the JSON is wrong.
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, 0, errors.New("header JSON: trailing data after the top-level object")
	}

	// Overlap check on a copy ordered by offset; zero-length tensors own no
	// bytes and cannot overlap anything.
	byOff := slices.Clone(tensors)
	slices.SortFunc(byOff, func(a, b TensorInfo) int {
		if a.Begin != b.Begin {
			return cmpInt64(a.Begin, b.Begin)
		}
		return cmpInt64(a.End, b.End)
	})
	var prev *TensorInfo
	for i := range byOff {
		t := &byOff[i]
		if t.Begin == t.End {
			continue
		}
		if prev != nil && t.Begin < prev.End {
			return nil, nil, 0, fmt.Errorf("header: tensor %q bytes [%d,%d) overlap tensor %q bytes [%d,%d)",
				t.Name, t.Begin, t.End, prev.Name, prev.Begin, prev.End)
		}
		prev = t
	}
	slices.SortFunc(tensors, func(a, b TensorInfo) int { return strings.Compare(a.Name, b.Name) })
	return tensors, metadata, dataStart, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func parseTensorEntry(name string, raw json.RawMessage, dataLen int64) (TensorInfo, error) {
	var rt rawTensor
	if err := json.Unmarshal(raw, &rt); err != nil {
		return TensorInfo{}, fmt.Errorf("header: tensor %q: %w", name, err)
	}
	switch {
	case rt.DType == nil:
		return TensorInfo{}, fmt.Errorf("header: tensor %q: missing dtype", name)
	case rt.Shape == nil:
		return TensorInfo{}, fmt.Errorf("header: tensor %q: missing shape", name)
	case rt.DataOffsets == nil:
		return TensorInfo{}, fmt.Errorf("header: tensor %q: missing data_offsets", name)
	}
	dt := DType(*rt.DType)
	size := dt.Size()
	if size == 0 {
		return TensorInfo{}, fmt.Errorf("header: tensor %q: unknown dtype %q", name, *rt.DType)
	}
	offs := *rt.DataOffsets
	if len(offs) != 2 {
		return TensorInfo{}, fmt.Errorf("header: tensor %q: data_offsets has %d entries, want 2", name, len(offs))
	}
	begin, end := offs[0], offs[1]
	if begin < 0 || end < begin {
		return TensorInfo{}, fmt.Errorf("header: tensor %q: bad data_offsets [%d, %d]", name, begin, end)
	}
	if end > dataLen {
		return TensorInfo{}, fmt.Errorf("header: tensor %q: data_offsets [%d, %d] run past the %d-byte data section (truncated file?)",
			name, begin, end, dataLen)
	}
	shape := make([]int, len(*rt.Shape))
	nbytes := int64(size)
	for i, d := range *rt.Shape {
		if d < 0 || d > math.MaxInt {
			return TensorInfo{}, fmt.Errorf("header: tensor %q: bad dimension %d in shape %v", name, d, *rt.Shape)
		}
		if d != 0 && nbytes > math.MaxInt64/d {
			return TensorInfo{}, fmt.Errorf("header: tensor %q: shape %v overflows", name, *rt.Shape)
		}
		nbytes *= d
		shape[i] = int(d)
	}
	if nbytes != end-begin {
		return TensorInfo{}, fmt.Errorf("header: tensor %q: %s %v needs %d bytes but data_offsets [%d, %d] hold %d",
			name, dt, shape, nbytes, begin, end, end-begin)
	}
	return TensorInfo{Name: name, DType: dt, Shape: shape, Begin: begin, End: end}, nil
}

// File is one memory-mapped safetensors file. It is read-only after
// OpenFile and safe for concurrent use until Close.
type File struct {
	Path     string
	Metadata map[string]string // the header's __metadata__, nil when absent

	mapping   []byte
	dataStart int64
	infos     []TensorInfo // sorted by name
	index     map[string]int
}

// OpenFile maps path and parses its header. The mapping is shared and
// read-only: nothing is read until a tensor's bytes are touched, and the
// kernel may drop clean pages under memory pressure. Truncating the file
// while it is mapped makes later accesses fault (SIGBUS); checkpoints are
// assumed immutable while open.
func OpenFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	// The mapping outlives the descriptor, so close it right away rather
	// than hold one per shard.
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("loader: %s: %w", path, err)
	}
	size := st.Size()
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("loader: %s: not a regular file", path)
	}
	if size == 0 {
		return nil, fmt.Errorf("loader: %s: empty file", path)
	}
	if size < 8 {
		return nil, fmt.Errorf("loader: %s: file too short for a safetensors header (%d bytes)", path, size)
	}
	if size > math.MaxInt {
		return nil, fmt.Errorf("loader: %s: file of %d bytes is too large to map", path, size)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("loader: %s: mmap: %w", path, err)
	}
	infos, meta, dataStart, err := parseHeader(m, size)
	if err != nil {
		_ = unix.Munmap(m)
		return nil, fmt.Errorf("loader: %s: %w", path, err)
	}
	index := make(map[string]int, len(infos))
	for i, ti := range infos {
		index[ti.Name] = i
	}
	return &File{Path: path, Metadata: meta, mapping: m, dataStart: dataStart, infos: infos, index: index}, nil
}

// Tensors lists the file's tensors sorted by name.
func (f *File) Tensors() []TensorInfo {
	out := make([]TensorInfo, len(f.infos))
	for i, ti := range f.infos {
		out[i] = ti.clone()
	}
	return out
}

// clone copies the shape so callers cannot alter the parsed header.
func (ti TensorInfo) clone() TensorInfo {
	ti.Shape = slices.Clone(ti.Shape)
	return ti
}

// Info returns the header entry for name.
func (f *File) Info(name string) (TensorInfo, bool) {
	i, ok := f.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.infos[i].clone(), true
}

// Tensor returns the named tensor; its Data aliases the mapping (capacity
// clipped so an append cannot write into a neighbour) and is valid until
// Close. Data is only as aligned as the file makes it.
func (f *File) Tensor(name string) (Tensor, bool) {
	ti, ok := f.Info(name)
	if !ok || f.mapping == nil {
		return Tensor{}, false
	}
	lo, hi := f.dataStart+ti.Begin, f.dataStart+ti.End
	return Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: f.mapping[lo:hi:hi]}, true
}

// Close unmaps the file. Every Tensor.Data obtained from it becomes invalid.
// Closing twice is harmless.
func (f *File) Close() error {
	if f.mapping == nil {
		return nil
	}
	m := f.mapping
	f.mapping = nil
	if err := unix.Munmap(m); err != nil {
		return fmt.Errorf("loader: %s: munmap: %w", f.Path, err)
	}
	return nil
}
