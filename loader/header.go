package loader

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
)

// HeaderEntry is one tensor of a safetensors file being written. The data
// of the entries follows the header in entry order, without gaps.
type HeaderEntry struct {
	Name  string
	DType DType
	Shape []int64
}

// Bytes is the entry's data size.
func (e HeaderEntry) Bytes() int64 {
	n := int64(e.DType.Size())
	for _, d := range e.Shape {
		n *= d
	}
	return n
}

// EncodeHeader renders a safetensors header the way the reference writer
// does (and the published checkpoints have it): the 8-byte little-endian
// length, then compact JSON with "dtype", "shape", "data_offsets" per
// tensor in entry order and "__metadata__" last, padded with spaces to a
// multiple of 8 bytes so the data section starts aligned. ParseHeader
// reads it back.
func EncodeHeader(es []HeaderEntry) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("{")
	var off int64
	for _, e := range es {
		if e.DType.Size() == 0 {
			return nil, fmt.Errorf("loader: %s: unknown dtype %q", e.Name, e.DType)
		}
		name, err := json.Marshal(e.Name)
		if err != nil {
			return nil, fmt.Errorf("loader: %s: %w", e.Name, err)
		}
		b.Write(name)
		b.WriteString(`:{"dtype":"`)
		b.WriteString(string(e.DType))
		b.WriteString(`","shape":[`)
		for i, d := range e.Shape {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(d, 10))
		}
		end := off + e.Bytes()
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]},`, off, end)
		off = end
	}
	b.WriteString(`"__metadata__":{"format":"pt"}}`)
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	out := make([]byte, 8, 8+b.Len())
	binary.LittleEndian.PutUint64(out, uint64(b.Len()))
	return append(out, b.Bytes()...), nil
}
