package synth

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/gptoss/gptoss/mxfp4"
)

// Write buffer sizes per worker: tensor bytes, and an expert weight's
// scales (1/16 of its blocks, so both flush about equally often).
const (
	writeBuf  = 1 << 20
	scalesBuf = 64 << 10
)

// gaussChunk is the number of BF16 values generated per write: bounds a
// worker's value buffer to 64 KiB.
const gaussChunk = 1 << 15

// target is a place in an open output file.
type target struct {
	f   *os.File
	off int64
}

// layoutPlan records, for one layout's files, where each expert weight's
// scales part lives and which weights have a blocks part: generating the
// blocks yields the scales, so the blocks part writes both and the scales
// part is then nothing to do.
type layoutPlan struct {
	scalesAt map[*source]target
	blocks   map[*source]bool
}

// job is one work item: entry e written at dst, plus the scales entries
// that its blocks parts fill in as they go (reported done with it).
type job struct {
	e    entry
	dst  target
	lay  *layoutPlan
	also []entry
	cost int64 // Gaussian values to draw
}

// writeTensors creates the shard files under tmp with their headers and
// generates every tensor into them, o.Workers tensors at a time. The first
// error (or ctx's cancellation) stops all workers.
func writeTensors(ctx context.Context, tmp string, layouts [][]shard, o Options, total int64) (err error) {
	var files []*os.File
	defer func() {
		for _, f := range files {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("synth: %w", cerr)
			}
		}
	}()

	var jobs []*job
	for _, shards := range layouts {
		lay := &layoutPlan{scalesAt: map[*source]target{}, blocks: map[*source]bool{}}
		var placed []job
		for _, s := range shards {
			path := filepath.Join(tmp, s.path)
			f, err := os.Create(path)
			if err != nil {
				return fmt.Errorf("synth: %w", err)
			}
			files = append(files, f)
			header, err := safetensorsHeader(s.entries)
			if err != nil {
				return err
			}
			if _, err := f.Write(header); err != nil {
				return fmt.Errorf("synth: %w", err)
			}
			off := int64(len(header))
			for _, e := range s.entries {
				at := off
				for _, p := range e.parts {
					switch p.kind {
					case partBlocks:
						lay.blocks[p.src] = true
					case partScales:
						lay.scalesAt[p.src] = target{f, at}
					}
					at += p.size()
				}
				placed = append(placed, job{e: e, dst: target{f, off}, lay: lay})
				off += e.Size()
			}
		}
		// Scales entries that the blocks parts write become part of the
		// blocks' job; every other entry is a job of its own.
		byBlocks := map[*source]*job{}
		var covered []entry
		for i := range placed {
			j := &placed[i]
			if lay.covers(j.e) {
				covered = append(covered, j.e)
				continue
			}
			for _, p := range j.e.parts {
				switch {
				case p.kind == partBlocks:
					byBlocks[p.src] = j
					j.cost += p.src.rows * p.src.cols
				case p.kind == partBF16 || !lay.blocks[p.src]:
					j.cost += p.src.rows * p.src.cols
				}
			}
			jobs = append(jobs, j)
		}
		for _, e := range covered {
			j := byBlocks[e.parts[0].src]
			j.also = append(j.also, e)
		}
	}
	// Most work first, so that no big tensor starts last and leaves the
	// other workers idle at the end.
	sort.SliceStable(jobs, func(a, b int) bool { return jobs[a].cost > jobs[b].cost })

	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(jobs))
	var (
		next     atomic.Int64
		stopped  atomic.Bool
		mu       sync.Mutex // guards firstErr, done and the Progress calls
		firstErr error
		done     int64
		wg       sync.WaitGroup
	)
	errStopped := errors.New("stopped")
	alive := func() error {
		if stopped.Load() {
			return errStopped
		}
		return ctx.Err()
	}
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		stopped.Store(true)
	}
	finished := func(j *job) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range append([]entry{j.e}, j.also...) {
			done += e.Size()
			if o.Progress != nil {
				o.Progress(done, total)
			}
		}
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := &gen{seed: o.Seed, alive: alive,
				w: bufio.NewWriterSize(io.Discard, writeBuf), sw: bufio.NewWriterSize(io.Discard, scalesBuf)}
			for {
				i := next.Add(1) - 1
				if i >= int64(len(jobs)) {
					return
				}
				j := jobs[i]
				if err := alive(); err != nil {
					fail(fmt.Errorf("synth: %w", err))
					return
				}
				if err := g.write(j); err != nil {
					fail(fmt.Errorf("synth: %s: %w", j.e.Name, err))
					return
				}
				finished(j)
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// covers reports whether every part of e is the scales of a weight whose
// blocks part is in the layout (and so writes them).
func (l *layoutPlan) covers(e entry) bool {
	for _, p := range e.parts {
		if p.kind != partScales || !l.blocks[p.src] {
			return false
		}
	}
	return true
}

// gen is one worker's generator; its buffers are reused for every tensor.
type gen struct {
	seed  uint64
	alive func() error  // an error once Write is cancelled or another worker failed
	w, sw *bufio.Writer // tensor bytes; an expert weight's scales
	f32   []float32     // one expert row
	buf   []byte        // BF16 chunk or one row's blocks
	sc    []byte        // one row's scales
}

// write generates job j's entry, its parts back to back, at its offset.
func (g *gen) write(j *job) error {
	g.w.Reset(io.NewOffsetWriter(j.dst.f, j.dst.off))
	for _, p := range j.e.parts {
		if err := g.writePart(p, j.lay); err != nil {
			return err
		}
	}
	return g.w.Flush()
}

func (g *gen) writePart(p part, lay *layoutPlan) error {
	switch p.kind {
	case partBF16:
		return g.writeBF16(g.w, p.src)
	case partBlocks:
		t, ok := lay.scalesAt[p.src]
		if !ok { // no scales tensor in this layout
			return g.experts(g.w, io.Discard, p.src)
		}
		g.sw.Reset(io.NewOffsetWriter(t.f, t.off))
		if err := g.experts(g.w, g.sw, p.src); err != nil {
			return err
		}
		return g.sw.Flush()
	default:
		if lay.blocks[p.src] { // written by the blocks part
			return nil
		}
		return g.experts(io.Discard, g.w, p.src)
	}
}

// writeBF16 streams rows·cols Gaussian values as little-endian BF16.
func (g *gen) writeBF16(w io.Writer, s *source) error {
	r := s.rng(g.seed)
	if cap(g.buf) < 2*gaussChunk {
		g.buf = make([]byte, 2*gaussChunk)
	}
	n := s.rows * s.cols
	for done := int64(0); done < n; {
		k := int(min(n-done, gaussChunk))
		b := g.buf[:2*k]
		for i := 0; i < k; i++ {
			v := float32(s.mean + s.std*r.NormFloat64())
			binary.LittleEndian.PutUint16(b[2*i:], bf16(v))
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		done += int64(k)
		if err := g.alive(); err != nil {
			return err
		}
	}
	return nil
}

// experts generates an expert weight row by row (rows of cols inputs,
// Gaussian in float32), MXFP4-encodes each row and writes its blocks to w
// and its scales to sw.
func (g *gen) experts(w, sw io.Writer, s *source) error {
	r := s.rng(g.seed)
	G := int(s.cols / 32)
	if int64(cap(g.f32)) < s.cols {
		g.f32 = make([]float32, s.cols)
	}
	if cap(g.buf) < 16*G {
		g.buf = make([]byte, 16*G)
	}
	if cap(g.sc) < G {
		g.sc = make([]byte, G)
	}
	row, blk, sc := g.f32[:s.cols], g.buf[:16*G], g.sc[:G]
	for i := int64(0); i < s.rows; i++ {
		for j := range row {
			row[j] = float32(s.mean + s.std*r.NormFloat64())
		}
		mxfp4.EncodeRow(blk, sc, row)
		if _, err := w.Write(blk); err != nil {
			return err
		}
		if _, err := sw.Write(sc); err != nil {
			return err
		}
		if i%64 == 0 {
			if err := g.alive(); err != nil {
				return err
			}
		}
	}
	return nil
}
