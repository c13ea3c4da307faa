//go:build linux

package cpu

import "unsafe"

// alignOffset is the offset of the first 2 MiB-aligned byte of m.
func alignOffset(m []byte) int {
	p := uintptr(unsafe.Pointer(&m[0]))
	return int((p+(2<<20-1))&^(2<<20-1) - p)
}

// alignOffsetPage is the offset of the first 4 KiB-aligned byte of m.
func alignOffsetPage(m []byte) int {
	if len(m) == 0 {
		return 0
	}
	p := uintptr(unsafe.Pointer(&m[0]))
	return int((p+4095)&^4095 - p)
}
