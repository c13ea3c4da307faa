package cuda

import (
	"fmt"
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
