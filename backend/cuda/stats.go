package cuda

import (
	"encoding/binary"
	"fmt"

	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/backend/cuda/driver"
)

// Stats returns the bytes the ops read (backend.Stats) since the backend was made or the last
// ResetStats. Everything but the experts is counted on the host as the
// ops are issued (shapes decide it). The experts a decode batch selects
// are known only on the device, so moe_combine counts them there and this
// call reads the counter, waiting for the queued work.
func (b *Backend) Stats() (backend.Stats, error) {
	if err := b.drain(); err != nil {
		return backend.Stats{}, err
	}
	var c [8]byte
	if err := b.ctx.CopyDtoH(c[:], b.status+statusExperts); err != nil {
		return backend.Stats{}, err
	}
	s := b.stats
	s.Experts += int64(binary.LittleEndian.Uint64(c[:]))
	return s, nil
}

// ResetStats sets the counts to zero.
func (b *Backend) ResetStats() error {
	if err := b.drain(); err != nil {
		return err
	}
	b.stats = backend.Stats{}
	if err := b.s.Memset(b.status+statusExperts, 0, 8); err != nil {
		return err
	}
	return b.sync()
}

// expertBytes is what one expert of a projection reads: MXFP4 blocks and
// scales as stored, the bias widened to float32 (as the CPU backend counts).
func (x *experts) expertBytes() int64 {
	rows, groups := int64(x.shape[1]), int64(x.shape[2])
	return rows*groups*17 + 4*rows
}

// ReadBandwidth measures the device's memory read bandwidth in GB/s
// (1e9 bytes per second): the read_bw kernel streams a buffer of size
// bytes (far above the L2 cache), timed with events, best of rounds after
// one warm-up pass, as `gptoss bench membw` does for the CPU. The buffer is
// capped at half the free memory.
func (b *Backend) ReadBandwidth(size int64, rounds int) (float64, error) {
	if rounds < 1 {
		return 0, fmt.Errorf("cuda: read bandwidth: %d rounds", rounds)
	}
	free, _, err := b.ctx.MemInfo()
	if err != nil {
		return 0, err
	}
	size = min(size, free/2) &^ (1<<20 - 1)
	if size < 1<<20 {
		return 0, fmt.Errorf("cuda: read bandwidth: only %d bytes of device memory free", free)
	}
	if err := b.drain(); err != nil {
		return 0, err
	}
	buf, err := b.ctx.Alloc(size + 256)
	if err != nil {
		return 0, fmt.Errorf("cuda: read bandwidth: %w", err)
	}
	defer b.ctx.Free(buf)
	sink := buf + driver.DevicePtr(size)
	// Touch every page, so the first pass does not measure their mapping.
	if err := b.s.Memset(buf, 0x5a, int(size)+256); err != nil {
		return 0, err
	}
	start, err := b.ctx.NewEvent(true)
	if err != nil {
		return 0, err
	}
	defer start.Destroy()
	stop, err := b.ctx.NewEvent(true)
	if err != nil {
		return 0, err
	}
	defer stop.Destroy()
	var args driver.Args
	grid, block := driver.D1(8*max(b.info.SMs, 1)), driver.D1(256)
	best := 0.0
	for round := range rounds + 1 { // round 0 warms up
		args.Reset().Ptr(buf).Int64(size / 16).Ptr(sink)
		if err := start.Record(b.s); err != nil {
			return 0, err
		}
		if err := b.k.readBW.Launch(grid, block, 0, b.s, &args); err != nil {
			return 0, err
		}
		if err := stop.Record(b.s); err != nil {
			return 0, err
		}
		if err := stop.Synchronize(); err != nil {
			return 0, err
		}
		ms, err := stop.ElapsedMs(start)
		if err != nil {
			return 0, err
		}
		if round > 0 && ms > 0 {
			best = max(best, float64(size)/(float64(ms)/1e3)/1e9)
		}
	}
	if best == 0 {
		return 0, fmt.Errorf("cuda: read bandwidth: no pass took measurable time")
	}
	return best, nil
}
