//go:build !linux

package cpu

import "errors"

// arena is Linux-only (transparent huge pages); elsewhere SetHugePages
// makes weight loading fail.
type arena struct{}

func (a *arena) copyIn(src []byte) ([]byte, error) {
	return nil, errors.New("cpu: huge pages are only supported on Linux")
}

func (a *arena) free() {}
