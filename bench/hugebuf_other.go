//go:build !linux

package bench

import "runtime/debug"

// hugeBuffer allocates n bytes from the Go heap (huge pages are only
// requested on Linux) and returns them with a function that gives the
// memory back to the OS.
func hugeBuffer(n int) ([]byte, func(), error) {
	return make([]byte, n), debug.FreeOSMemory, nil
}
