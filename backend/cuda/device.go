package cuda

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParseDevice parses a --device value: "auto", "cpu", "cuda" (GPU 0) or
// "cuda:N". kind is "auto", "cpu" or "cuda".
func ParseDevice(s string) (kind string, ordinal int, err error) {
	switch s {
	case "auto", "":
		return "auto", 0, nil
	case "cpu", "cuda":
		return s, 0, nil
	}
	if rest, ok := strings.CutPrefix(s, "cuda:"); ok {
		n, err := strconv.Atoi(rest)
		if err == nil && n >= 0 {
			return "cuda", n, nil
		}
	}
	return "", 0, fmt.Errorf("--device %q: want auto, cpu, cuda or cuda:N", s)
}

// OpenDevice opens what a --device value names: nil for the CPU, else a
// CUDA backend the caller closes. "auto" uses GPU 0 when the driver and a
// GPU are there, and otherwise writes one line to log saying why and
// returns nil (the CPU); an explicit "cuda" or "cuda:N" without a usable
// GPU is an error.
func OpenDevice(spec string, log io.Writer) (*Backend, error) {
	kind, ordinal, err := ParseDevice(spec)
	if err != nil {
		return nil, err
	}
	if kind == "cpu" {
		return nil, nil
	}
	b, err := New(ordinal)
	if err == nil {
		return b, nil
	}
	if kind == "cuda" {
		return nil, fmt.Errorf("--device %s: %w", spec, err)
	}
	fmt.Fprintf(log, "gptoss: using the CPU: %v\n", err)
	return nil, nil
}
