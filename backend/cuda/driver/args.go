package driver

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Args packs kernel arguments for cuLaunchKernel. Each argument is stored
// with its real size and natural alignment (an int32 takes 4 bytes, a
// device pointer 8), and Launch hands the kernel a pointer to each one:
// cuLaunchKernel copies exactly sizeof(parameter) bytes from every
// pointer, so an int32 packed as 8 bytes would be misread on big-endian
// hosts and a 4-byte slot read as 8 would read past its value.
//
// An Args may be reused with Reset; it holds no Go pointers, so its buffer
// may be passed to C.
type Args struct {
	buf   []byte
	offs  []int32
	sizes []int
	err   error
}

// Reset empties the list, keeping its memory.
func (a *Args) Reset() *Args {
	a.buf, a.offs, a.sizes, a.err = a.buf[:0], a.offs[:0], a.sizes[:0], nil
	return a
}

func (a *Args) put(size int) []byte {
	if len(a.offs) == maxLaunchArgs {
		if a.err == nil {
			a.err = fmt.Errorf("cuda: more than %d kernel arguments", maxLaunchArgs)
		}
		return make([]byte, size)
	}
	off := (len(a.buf) + size - 1) / size * size // natural alignment
	for len(a.buf) < off+size {
		a.buf = append(a.buf, 0)
	}
	a.offs = append(a.offs, int32(off))
	a.sizes = append(a.sizes, size)
	return a.buf[off : off+size]
}

// Ptr appends a device pointer (8 bytes).
func (a *Args) Ptr(p DevicePtr) *Args {
	binary.LittleEndian.PutUint64(a.put(bytesPerPointerOnHost), uint64(p))
	return a
}

// Int32 appends a C int (4 bytes).
func (a *Args) Int32(v int32) *Args {
	binary.LittleEndian.PutUint32(a.put(4), uint32(v))
	return a
}

// Int appends a Go int as a C int, recording an error if it does not fit.
func (a *Args) Int(v int) *Args {
	if v != int(int32(v)) && a.err == nil {
		a.err = fmt.Errorf("cuda: kernel argument %d does not fit in an int32", v)
	}
	return a.Int32(int32(v))
}

// Uint32 appends an unsigned int (4 bytes).
func (a *Args) Uint32(v uint32) *Args {
	binary.LittleEndian.PutUint32(a.put(4), v)
	return a
}

// Float32 appends a float (4 bytes).
func (a *Args) Float32(v float32) *Args {
	binary.LittleEndian.PutUint32(a.put(4), math.Float32bits(v))
	return a
}

// Int64 appends a long long (8 bytes).
func (a *Args) Int64(v int64) *Args {
	binary.LittleEndian.PutUint64(a.put(8), uint64(v))
	return a
}

// Len is the number of arguments.
func (a *Args) Len() int { return len(a.offs) }

// Sizes returns each argument's size in bytes, for tests and diagnostics.
func (a *Args) Sizes() []int { return append([]int(nil), a.sizes...) }

// Bytes returns the packed buffer and each argument's offset in it.
func (a *Args) Bytes() ([]byte, []int32) { return a.buf, a.offs }

// Err is the first packing error.
func (a *Args) Err() error { return a.err }
