package analysis

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/gptoss/gptoss/loader"
)

// entry is one tensor to write: its header fields and a producer of its
// bytes (which must write exactly Size bytes).
type entry struct {
	Name  string
	DType loader.DType
	Shape []int
	write func(w io.Writer) error
}

// Size is the entry's data size in bytes.
func (e entry) Size() int64 {
	n := int64(e.DType.Size())
	for _, d := range e.Shape {
		n *= int64(d)
	}
	return n
}

// safetensorsHeader renders the header for es, laid out back to back in
// the given order, in the format loader reads (loader.EncodeHeader).
func safetensorsHeader(es []entry) ([]byte, error) {
	hs := make([]loader.HeaderEntry, len(es))
	for i, e := range es {
		shape := make([]int64, len(e.Shape))
		for j, d := range e.Shape {
			shape[j] = int64(d)
		}
		hs[i] = loader.HeaderEntry{Name: e.Name, DType: e.DType, Shape: shape}
	}
	return loader.EncodeHeader(hs)
}

// countingWriter counts bytes so a producer that writes the wrong amount
// is caught before it corrupts the offsets of every later tensor.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeSafetensors writes es, in order, to path.
func writeSafetensors(path string, es []entry) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("analysis: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("analysis: %s: %w", path, cerr)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	header, err := safetensorsHeader(es)
	if err != nil {
		return err
	}
	if _, err := bw.Write(header); err != nil {
		return fmt.Errorf("analysis: %s: %w", path, err)
	}
	for _, e := range es {
		cw := &countingWriter{w: bw}
		if err := e.write(cw); err != nil {
			return fmt.Errorf("analysis: %s: %s: %w", path, e.Name, err)
		}
		if cw.n != e.Size() {
			return fmt.Errorf("analysis: %s: %s: wrote %d bytes, header says %d", path, e.Name, cw.n, e.Size())
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("analysis: %s: %w", path, err)
	}
	return nil
}

// copyBytes is the producer of a tensor copied unchanged.
func copyBytes(b []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}
}

// bf16ToF32 widens a little-endian BF16 value.
func bf16ToF32(lo, hi byte) float32 {
	return math.Float32frombits(uint32(lo)<<16 | uint32(hi)<<24)
}

// toFloats converts a BF16 or F32 tensor's bytes to float32.
func toFloats(dst []float32, data []byte, dt loader.DType) error {
	switch dt {
	case loader.BF16:
		for i := range dst {
			dst[i] = bf16ToF32(data[2*i], data[2*i+1])
		}
	case loader.F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
	default:
		return fmt.Errorf("dtype %s: want BF16 or F32", dt)
	}
	return nil
}
