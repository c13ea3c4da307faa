package synth

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize parses a byte count such as "5GB", "4.5GB", "512MiB", "1e9" or
// "0": decimal units (KB, MB, GB, TB = powers of 1000, as Hugging Face's
// max_shard_size uses them) and binary ones (KiB, MiB, GiB, TiB); case and
// a trailing "B" are optional ("2g" = "2GB").
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	units := []struct {
		suffix string
		mult   float64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"ki", 1 << 10}, {"mi", 1 << 20}, {"gi", 1 << 30}, {"ti", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
		{"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"t", 1e12},
		{"b", 1},
	}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || v*mult >= 1<<62 {
		return 0, fmt.Errorf("synth: bad size %q (want e.g. 5GB, 4.5GB, 512MiB, 0)", s)
	}
	return int64(math.Round(v * mult)), nil
}

// FormatSize renders a byte count in decimal units, e.g. "13.76 GB".
func FormatSize(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.2f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
