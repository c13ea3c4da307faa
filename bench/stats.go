package bench

import (
	"bufio"
	"math"
	"os"
	"strconv"
	"strings"
)

// Rate is a throughput over repeats: mean and sample standard deviation.
type Rate struct {
	Mean    float64   `json:"mean"`
	Std     float64   `json:"std"`
	Samples []float64 `json:"samples"`
}

func rateOf(samples []float64) Rate {
	r := Rate{Samples: samples}
	if len(samples) == 0 {
		return r
	}
	for _, s := range samples {
		r.Mean += s
	}
	r.Mean /= float64(len(samples))
	if len(samples) > 1 {
		var ss float64
		for _, s := range samples {
			ss += (s - r.Mean) * (s - r.Mean)
		}
		r.Std = math.Sqrt(ss / float64(len(samples)-1))
	}
	return r
}

// peakRSS returns the process's peak resident set (VmHWM) in bytes, or 0
// where /proc is not available. File pages of the mapped checkpoint count.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
