package serve

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress reports finished requests on a writer: a redrawn bar on a
// terminal, else a plain line every few seconds (logs stay readable).
type Progress struct {
	w        io.Writer
	terminal bool
	label    string
	every    time.Duration

	mu                sync.Mutex
	total, ok, failed int
	start, lastDraw   time.Time
}

// NewProgress returns a reporter writing to w; terminal selects the bar.
func NewProgress(w io.Writer, terminal bool) *Progress {
	every := 5 * time.Second
	if terminal {
		every = 100 * time.Millisecond
	}
	return &Progress{w: w, terminal: terminal, every: every}
}

// SetLabel names the run the next Begin starts (e.g. "concurrency 8").
func (p *Progress) SetLabel(label string) {
	p.mu.Lock()
	p.label = label
	p.mu.Unlock()
}

// Begin starts counting a run of total requests.
func (p *Progress) Begin(total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total, p.ok, p.failed = total, 0, 0
	p.start, p.lastDraw = time.Now(), time.Now()
	if !p.terminal {
		fmt.Fprintf(p.w, "%ssending %d requests\n", p.prefix(), total)
		return
	}
	p.draw()
}

func (p *Progress) prefix() string {
	if p.label == "" {
		return ""
	}
	return p.label + ": "
}

// Done counts one finished request.
func (p *Progress) Done(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ok {
		p.ok++
	} else {
		p.failed++
	}
	if time.Since(p.lastDraw) >= p.every {
		p.lastDraw = time.Now()
		p.draw()
	}
}

// End draws the final state and ends the bar's line.
func (p *Progress) End() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw()
	if p.terminal {
		fmt.Fprintln(p.w)
	}
}

func (p *Progress) draw() {
	done := p.ok + p.failed
	elapsed := time.Since(p.start).Truncate(100 * time.Millisecond)
	label := p.prefix()
	if !p.terminal {
		fmt.Fprintf(p.w, "%s%d/%d requests done (%d failed) after %v\n", label, done, p.total, p.failed, elapsed)
		return
	}
	const width = 30
	filled := 0
	if p.total > 0 {
		filled = done * width / p.total
	}
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	fmt.Fprintf(p.w, "\r%s[%s] %d/%d failed %d %v ", label, bar, done, p.total, p.failed, elapsed)
}
