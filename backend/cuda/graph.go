package cuda

import (
	"encoding/binary"
	"fmt"

	"github.com/gptoss/gptoss/backend/cuda/driver"
)

// CUDA graphs for repeated op sequences, decode steps above all.
//
// The model calls the backend op by op, so the backend cannot see where a
// decode step begins or ends. With graphs on, ops do not launch: each op
// appends its kernel launches to a queue, and its per-call host data
// (token ids, the positions' cos/sin, row metadata with the cache
// addresses, row lists) to a pinned staging arena that restarts at offset
// 0 after every flush, so the i-th staged item of a step lands at the same
// device address every step. The queue is flushed whenever the host has to
// wait for the device (a read, a growing buffer, Synchronize): the arena
// goes up in one copy, then the queue runs.
//
// Why replay is valid: a queue's key is every launch's kernel, grid,
// block, shared bytes and packed argument bytes. Two queues with equal keys
// launch the same kernels with the same arguments in the same order, so
// launching a graph captured from the first is the same as launching the
// second. Everything that changes between decode steps of one batch shape
// (tokens, positions, cos/sin, cache addresses, which move when a full
// layer's cache grows) is data the kernels read from the arena, never a
// kernel argument, so consecutive steps have equal keys. When an argument
// does change (a scratch buffer or the arena grows, the attention split
// count follows a full layer's cache capacity), the key changes and a new
// graph is made; cuGraphExecUpdate would save the instantiation, but such
// changes are rare (geometric growth), and a fresh capture is simpler to
// reason about than patching nodes.
//
// A key seen for the first time runs eagerly (the same launches, one by
// one); the second time it is captured into a graph and launched; later
// it is replayed, so one-off sequences never pay for a capture. Sequences
// with a product over more than graphMaxRows rows (prompt chunks) always
// run eagerly: their kernels are long enough that launching them one by
// one costs nothing, and a prompt's chunks would otherwise fill the cache
// (their MoE reads the expert ids back per layer, so every layer is a
// sequence of its own).
type graphState struct {
	on    bool
	queue []queued // queue[:n] are pending; the rest keep their memory
	n     int
	key   []byte
	rows  int // the most rows a queued product covers (Linear notes it)

	arena  stagingRing   // the pinned arena and its device twin
	copied *driver.Event // recorded after the last arena upload
	// inFlight: copied was recorded and not yet waited for, so the
	// upload may still be reading the pinned arena.
	inFlight bool

	cache   map[string]*graphEntry
	recent  *graphEntry // the last entry used: decode repeats it every step
	flushes uint64
	stats   GraphStats
}

// queued is one deferred kernel launch.
type queued struct {
	f           *driver.Function
	grid, block driver.Dim3
	shared      int
	args        driver.Args
}

type graphEntry struct {
	key  string
	exec *driver.GraphExec // nil until the key is seen a second time
	last uint64            // the flush that last used it, for eviction
}

// graphCacheSize bounds the keys remembered (seen once or captured); the
// least recently used goes first. A decode loop uses one per batch size.
const graphCacheSize = 64

// graphMaxRows is the largest batch whose sequences may become graphs.
const graphMaxRows = 64

// GraphStats says how the queued op sequences ran.
type GraphStats struct {
	Enabled  bool   `json:"enabled"`
	Flushes  int64  `json:"flushes"`  // sequences run
	Eager    int64  `json:"eager"`    // run launch by launch (first sighting)
	Captures int64  `json:"captures"` // captured into a graph and launched
	Replays  int64  `json:"replays"`  // a cached graph launched
	Cached   int    `json:"cached"`   // graphs instantiated now
	Disabled string `json:"disabled,omitempty"`
}

// SetGraphs turns CUDA graphs on or off (on by default). Work queued so
// far runs first; turning them off destroys the cached graphs. Results
// are the same either way (TestGraphsMatchEager): the same kernels run
// with the same arguments.
func (b *Backend) SetGraphs(on bool) error {
	if err := b.drain(); err != nil {
		return err
	}
	if !on {
		b.dropGraphs()
	}
	b.g.on = on
	return nil
}

// GraphStats reports the graph counters since the backend was made.
func (b *Backend) GraphStats() GraphStats {
	s := b.g.stats
	s.Enabled = b.g.on
	for _, e := range b.g.cache {
		if e.exec != nil {
			s.Cached++
		}
	}
	return s
}

// Since is what the counters of s added after before was taken.
func (s GraphStats) Since(before GraphStats) GraphStats {
	s.Flushes -= before.Flushes
	s.Eager -= before.Eager
	s.Captures -= before.Captures
	s.Replays -= before.Replays
	return s
}

func (b *Backend) dropGraphs() {
	for k, e := range b.g.cache {
		if e.exec != nil {
			e.exec.Destroy()
		}
		delete(b.g.cache, k)
	}
	b.g.recent = nil
}

// a starts the argument list of the next launch: in graph mode the
// queue's next entry (its memory reused from earlier steps), else the
// backend's one list. Each a() is followed by exactly one launch.
func (b *Backend) a() *driver.Args {
	g := &b.g
	if !g.on {
		return b.args.Reset()
	}
	if g.n == len(g.queue) {
		g.queue = append(g.queue, queued{})
	}
	return g.queue[g.n].args.Reset()
}

// launch queues (graph mode) or launches the kernel with the arguments
// packed since a().
func (b *Backend) launch(f *driver.Function, grid, block driver.Dim3, shared int) error {
	g := &b.g
	if !g.on {
		if b.prof.on {
			return b.profiledLaunch(f, grid, block, shared)
		}
		return f.Launch(grid, block, shared, b.s, &b.args)
	}
	q := &g.queue[g.n]
	if err := q.args.Err(); err != nil {
		return fmt.Errorf("cuda: launch %s: %w", f.Name, err)
	}
	q.f, q.grid, q.block, q.shared = f, grid, block, shared
	g.n++
	return nil
}

// stageArena copies p into the arena and returns its device address,
// valid for the launches queued until the next flush.
func (b *Backend) stageArena(p []byte) (driver.DevicePtr, error) {
	g := &b.g
	if g.inFlight {
		// The last upload may still be reading the pinned arena.
		if err := g.copied.Synchronize(); err != nil {
			return 0, err
		}
		g.inFlight = false
	}
	n := (len(p) + 255) &^ 255
	if g.arena.off+n > g.arena.size {
		// Queued launches point into the current arena: run them, then
		// grow it if one item alone does not fit. The new addresses
		// change the keys once.
		if err := b.drain(); err != nil {
			return 0, err
		}
		if n > g.arena.size {
			if err := b.regrow(&g.arena, n); err != nil {
				return 0, err
			}
		}
	}
	copy(g.arena.host.Bytes()[g.arena.off:], p)
	ptr := g.arena.dev + driver.DevicePtr(g.arena.off)
	g.arena.off += n
	return ptr, nil
}

// flush uploads the arena and runs the queued launches: a cached graph if
// this exact sequence ran before, else a capture on its second sighting,
// else one by one.
func (b *Backend) flush() error {
	g := &b.g
	n, rows := g.n, g.rows
	g.n, g.rows = 0, 0
	if g.arena.off > 0 {
		err := b.s.CopyHtoD(g.arena.dev, g.arena.host, 0, g.arena.off)
		g.arena.off = 0
		b.stageGen++ // the arena restarts
		if err != nil {
			return err
		}
		if err := g.copied.Record(b.s); err != nil {
			return err
		}
		g.inFlight = true
	}
	if n == 0 {
		return nil
	}
	q := g.queue[:n]
	g.flushes++
	g.stats.Flushes++
	if rows > graphMaxRows {
		g.stats.Eager++
		return b.runEager(q)
	}
	g.key = appendKey(g.key[:0], q)
	e := g.recent
	if e == nil || e.key != string(g.key) { // a compare, cheaper than hashing the key
		e = g.cache[string(g.key)]
	}
	if e == nil {
		g.recent = b.remember(string(g.key))
		g.stats.Eager++
		return b.runEager(q)
	}
	g.recent = e
	e.last = g.flushes
	if e.exec == nil {
		exec, err := b.capture(q)
		if err != nil {
			// Capture is an optimisation: run the same launches eagerly
			// and stop using graphs, saying why in GraphStats.
			b.dropGraphs()
			g.on = false
			g.stats.Disabled = err.Error()
			g.stats.Eager++
			return b.runEager(q)
		}
		e.exec = exec
		g.stats.Captures++
	} else {
		g.stats.Replays++
	}
	return e.exec.Launch(b.s)
}

func (b *Backend) runEager(q []queued) error {
	for i := range q {
		if err := q[i].f.Launch(q[i].grid, q[i].block, q[i].shared, b.s, &q[i].args); err != nil {
			return err
		}
	}
	return nil
}

// capture records the launches into a graph without running them and
// instantiates it.
func (b *Backend) capture(q []queued) (*driver.GraphExec, error) {
	if err := b.s.BeginCapture(); err != nil {
		return nil, err
	}
	var launchErr error
	for i := range q {
		if launchErr = q[i].f.Launch(q[i].grid, q[i].block, q[i].shared, b.s, &q[i].args); launchErr != nil {
			break
		}
	}
	graph, err := b.s.EndCapture() // always, to leave capture mode
	if launchErr != nil {
		if graph != nil {
			graph.Destroy()
		}
		return nil, fmt.Errorf("cuda: graph capture: %w", launchErr)
	}
	if err != nil {
		return nil, fmt.Errorf("cuda: graph capture: %w", err)
	}
	exec, err := graph.Instantiate()
	graph.Destroy()
	if err != nil {
		return nil, fmt.Errorf("cuda: graph capture: %w", err)
	}
	return exec, nil
}

// remember records a key seen for the first time, evicting the least
// recently used key when the cache is full.
func (b *Backend) remember(key string) *graphEntry {
	g := &b.g
	if g.cache == nil {
		g.cache = make(map[string]*graphEntry)
	}
	if len(g.cache) >= graphCacheSize {
		var oldest string
		var last uint64
		first := true
		for k, e := range g.cache {
			if first || e.last < last {
				oldest, last, first = k, e.last, false
			}
		}
		if e := g.cache[oldest]; e.exec != nil {
			e.exec.Destroy()
		}
		if g.recent == g.cache[oldest] {
			g.recent = nil
		}
		delete(g.cache, oldest)
	}
	e := &graphEntry{key: key, last: g.flushes}
	g.cache[key] = e
	return e
}

// appendKey serialises what identifies a launch sequence: per launch the
// kernel name, grid, block, shared bytes, then the argument offsets and
// bytes (pointers, sizes and scalars as the kernel will see them).
func appendKey(key []byte, q []queued) []byte {
	for i := range q {
		l := &q[i]
		key = append(key, l.f.Name...)
		key = append(key, 0)
		for _, v := range []uint32{l.grid.X, l.grid.Y, l.grid.Z, l.block.X, l.block.Y, l.block.Z, uint32(l.shared)} {
			key = binary.LittleEndian.AppendUint32(key, v)
		}
		buf, offs := l.args.Bytes()
		key = binary.LittleEndian.AppendUint32(key, uint32(len(offs)))
		for _, o := range offs {
			key = binary.LittleEndian.AppendUint32(key, uint32(o))
		}
		key = binary.LittleEndian.AppendUint32(key, uint32(len(buf)))
		key = append(key, buf...)
	}
	return key
}
