package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// task is one op split statically across the pool: run(part, parts) does
// part `part` of `parts` equal parts. Tasks are structs owned by the
// Backend and reused, so starting an op allocates nothing.
type task interface {
	run(part, parts int)
}

// pool is a persistent set of worker goroutines; the calling goroutine is
// part 0 and workers 1 … parts-1 take the rest. Workers spin briefly
// between ops, because ops follow each other within microseconds during a
// forward pass, then sleep on a condition variable.
type pool struct {
	parts   int
	gen     atomic.Uint64 // bumped once per op; workers wait for a change
	pending atomic.Int32  // workers still running the current op
	current task          // written before gen is bumped, read after

	mu   sync.Mutex
	wake *sync.Cond
	quit bool

	// With timeWait, run adds the time part 0 spent waiting for the
	// other parts to waited (the profile's measure of imbalance).
	timeWait bool
	waited   time.Duration
}

// workerSpins is how many polls of gen a worker makes before sleeping:
// tens of microseconds, longer than the gap between two ops of a forward
// pass and much shorter than the gap between two requests.
const workerSpins = 20000

func newPool(parts int) *pool {
	p := &pool{parts: max(parts, 1)}
	p.wake = sync.NewCond(&p.mu)
	for i := 1; i < p.parts; i++ {
		go p.worker(i)
	}
	return p
}

// run executes t on all parts and returns when every part is done.
func (p *pool) run(t task) {
	if p.parts == 1 {
		t.run(0, 1)
		return
	}
	p.current = t
	p.pending.Store(int32(p.parts - 1))
	p.mu.Lock()
	p.gen.Add(1)
	p.mu.Unlock()
	p.wake.Broadcast()
	t.run(0, p.parts)
	var t0 time.Time
	if p.timeWait {
		t0 = time.Now()
	}
	for spins := 0; p.pending.Load() != 0; spins++ {
		if spins > 1000 {
			runtime.Gosched() // a worker may be waiting for a CPU
		}
	}
	if p.timeWait {
		p.waited += time.Since(t0)
	}
}

func (p *pool) worker(part int) {
	var seen uint64
	for {
		g := p.gen.Load()
		for spins := 0; g == seen && spins < workerSpins; spins++ {
			g = p.gen.Load()
		}
		if g == seen {
			p.mu.Lock()
			for p.gen.Load() == seen && !p.quit {
				p.wake.Wait()
			}
			quit := p.quit
			p.mu.Unlock()
			if quit {
				return
			}
			g = p.gen.Load()
		}
		seen = g
		p.current.run(part, p.parts)
		p.pending.Add(-1)
	}
}

// stop ends the workers once they are idle.
func (p *pool) stop() {
	p.mu.Lock()
	p.quit = true
	p.mu.Unlock()
	p.wake.Broadcast()
}

// span returns part's share [lo, hi) of n items, cut at multiples of
// align so that SIMD tiles stay whole (the last part takes the rest).
func span(n, part, parts, align int) (lo, hi int) {
	units := (n + align - 1) / align
	lo = min(units*part/parts*align, n)
	hi = min(units*(part+1)/parts*align, n)
	return lo, hi
}
