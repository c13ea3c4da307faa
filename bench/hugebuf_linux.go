//go:build linux

package bench

import "golang.org/x/sys/unix"

// hugeBuffer maps n bytes of anonymous memory advised for transparent huge
// pages (best effort: a kernel without them still gives the memory) and
// returns it with the function that unmaps it.
func hugeBuffer(n int) ([]byte, func(), error) {
	m, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, err
	}
	_ = unix.Madvise(m, unix.MADV_HUGEPAGE)
	return m, func() { _ = unix.Munmap(m) }, nil
}
