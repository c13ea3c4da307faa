// Package bench measures the engine against the machine: memory read
// bandwidth (the roofline of decode) and llama-bench style prefill and
// decode throughput with the bytes each decoded token reads.
package bench

import (
	"fmt"
	"sync"
	"time"

	"github.com/gptoss/gptoss/kernels"
)

// MemBWResult is a read-bandwidth measurement.
type MemBWResult struct {
	GBps    float64 `json:"gbps"`    // best round, 1e9 bytes per second
	Bytes   int64   `json:"bytes"`   // buffer size
	Threads int     `json:"threads"` // concurrent readers
	Rounds  int     `json:"rounds"`
}

// MemBW measures how fast threads readers, each streaming its own slice of
// one buffer of size bytes (far larger than the last-level cache) with the
// SIMD read loop, read memory together. It reports the best of rounds
// passes (as STREAM does): the machine's attainable read bandwidth. The
// buffer is anonymous memory advised for transparent huge pages where the
// OS has them, as the weights are with --hugepages: the attainable rate,
// so that no fraction of bandwidth computed against it is flattered.
func MemBW(isa kernels.ISA, threads int, size int64, rounds int) (MemBWResult, error) {
	if threads < 1 || size < int64(threads)*4096 || rounds < 1 {
		return MemBWResult{}, fmt.Errorf("bench: membw: %d threads over %d bytes, %d rounds", threads, size, rounds)
	}
	buf, release, err := hugeBuffer(int(size))
	if err != nil {
		return MemBWResult{}, fmt.Errorf("bench: membw: %w", err)
	}
	defer release()
	// Touch every page from its own reader so the pages exist (and, on
	// NUMA machines, sit near that reader) before timing.
	parts := split(buf, threads)
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Go(func() {
			for i := 0; i < len(p); i += 4096 {
				p[i] = byte(i >> 12)
			}
		})
	}
	wg.Wait()
	best := 0.0
	sums := make([]uint64, threads)
	for range rounds {
		var start sync.WaitGroup
		start.Add(1)
		for i, p := range parts {
			wg.Go(func() {
				start.Wait()
				sums[i] ^= isa.ReadStream(p)
			})
		}
		t0 := time.Now()
		start.Done()
		wg.Wait()
		best = max(best, float64(size)/time.Since(t0).Seconds()/1e9)
	}
	return MemBWResult{GBps: best, Bytes: size, Threads: threads, Rounds: rounds}, nil
}

// split cuts b into n nearly equal parts at 4 KiB boundaries.
func split(b []byte, n int) [][]byte {
	out := make([][]byte, n)
	pages := len(b) / 4096
	for i := range n {
		lo, hi := pages*i/n*4096, pages*(i+1)/n*4096
		if i == n-1 {
			hi = len(b)
		}
		out[i] = b[lo:hi]
	}
	return out
}
