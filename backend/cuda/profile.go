package cuda

import (
	"fmt"
	"time"

	"github.com/gptoss/gptoss/backend/cuda/driver"
)

// KernelTime is the GPU time of one kernel, summed over its launches.
type KernelTime struct {
	Name  string
	Time  time.Duration
	Calls int64
}

// profiler brackets every launch with two timing events while on. Events
// are folded into the totals every profileBatch launches (a
// synchronisation), so a long profile holds a bounded number of them.
type profiler struct {
	on      bool
	graphs  bool // the graph setting to restore when profiling stops
	events  []*driver.Event
	pending []pendingLaunch
	totals  map[string]*KernelTime
	order   []string // kernel names in order of first launch
}

type pendingLaunch struct {
	name       string
	start, end int // indices into events
}

const profileBatch = 2048

// SetProfile turns per-kernel GPU timing on or off. While on, kernels
// launch one by one (CUDA graphs are bypassed, and restored afterwards),
// so the step time grows by the launch overhead that graphs hide; the
// kernel times themselves are what the device spent in each kernel.
func (b *Backend) SetProfile(on bool) error {
	p := &b.prof
	if on == p.on {
		return nil
	}
	if on {
		graphs := b.g.on
		if err := b.SetGraphs(false); err != nil {
			return err
		}
		p.on, p.graphs = true, graphs
		return nil
	}
	if err := b.foldProfile(); err != nil {
		return err
	}
	p.on = false
	return b.SetGraphs(p.graphs)
}

// Profile returns the kernel times gathered since the last call, in order
// of first launch, and starts a new count.
func (b *Backend) Profile() ([]KernelTime, error) {
	if err := b.foldProfile(); err != nil {
		return nil, err
	}
	p := &b.prof
	out := make([]KernelTime, 0, len(p.order))
	for _, name := range p.order {
		out = append(out, *p.totals[name])
	}
	p.totals, p.order = nil, nil
	return out, nil
}

// profiledLaunch launches f between two recorded events.
func (b *Backend) profiledLaunch(f *driver.Function, grid, block driver.Dim3, shared int) error {
	p := &b.prof
	if len(p.pending) >= profileBatch {
		if err := b.foldProfile(); err != nil {
			return err
		}
	}
	i := 2 * len(p.pending)
	for len(p.events) < i+2 {
		e, err := b.ctx.NewEvent(true)
		if err != nil {
			return fmt.Errorf("cuda: profile: %w", err)
		}
		p.events = append(p.events, e)
	}
	if err := p.events[i].Record(b.s); err != nil {
		return err
	}
	if err := f.Launch(grid, block, shared, b.s, &b.args); err != nil {
		return err
	}
	if err := p.events[i+1].Record(b.s); err != nil {
		return err
	}
	p.pending = append(p.pending, pendingLaunch{name: f.Name, start: i, end: i + 1})
	return nil
}

// foldProfile waits for the recorded events and adds their intervals to
// the totals.
func (b *Backend) foldProfile() error {
	p := &b.prof
	if len(p.pending) == 0 {
		return nil
	}
	if err := b.sync(); err != nil {
		return err
	}
	if p.totals == nil {
		p.totals = map[string]*KernelTime{}
	}
	for _, l := range p.pending {
		ms, err := p.events[l.end].ElapsedMs(p.events[l.start])
		if err != nil {
			return fmt.Errorf("cuda: profile: %w", err)
		}
		t := p.totals[l.name]
		if t == nil {
			t = &KernelTime{Name: l.name}
			p.totals[l.name] = t
			p.order = append(p.order, l.name)
		}
		t.Time += time.Duration(float64(ms) * float64(time.Millisecond))
		t.Calls++
	}
	p.pending = p.pending[:0]
	return nil
}

// freeProfile destroys the profiler's events.
func (b *Backend) freeProfile() {
	for _, e := range b.prof.events {
		e.Destroy()
	}
	b.prof.events = nil
}
