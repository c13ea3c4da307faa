package serve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StartupConfig describes how to start the server being timed.
type StartupConfig struct {
	// Command and Args start the server (e.g. the gptoss binary and
	// "serve --model DIR"); the benchmark appends --host 127.0.0.1
	// --port 0 --addr-file FILE so that runs never collide on a port.
	Command string
	Args    []string
	Runs    int
	// Timeout bounds each start, from exec until /health answers.
	Timeout time.Duration
	// Log, if set, receives the server's own output.
	Log io.Writer
}

// StartupRun is one timed start. Times are seconds from exec.
type StartupRun struct {
	// ServingLogS is when the server logged its "serving" line: the model
	// is loaded and the socket is open.
	ServingLogS float64 `json:"serving_log_s"`
	// ListenS is when the listening address first accepted a connection.
	ListenS float64 `json:"listen_s"`
	// HealthS is when GET /health first answered 200.
	HealthS float64 `json:"health_s"`
	// PeakRSSBytes is the process's VmHWM once healthy (0 where /proc is
	// missing).
	PeakRSSBytes int64  `json:"peak_rss_bytes"`
	Addr         string `json:"addr"`
}

// StartupReport is every run plus medians.
type StartupReport struct {
	Command       []string     `json:"command"`
	Runs          []StartupRun `json:"runs"`
	MedianServing float64      `json:"median_serving_log_s"`
	MedianListen  float64      `json:"median_listen_s"`
	MedianHealth  float64      `json:"median_health_s"`
	MaxPeakRSS    int64        `json:"max_peak_rss_bytes"`
}

// Startup starts and stops the server cfg.Runs times, timing each start.
func Startup(ctx context.Context, cfg StartupConfig) (*StartupReport, error) {
	if cfg.Command == "" {
		return nil, fmt.Errorf("startup: no server command")
	}
	runs := max(cfg.Runs, 1)
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	rep := &StartupReport{Command: append([]string{cfg.Command}, cfg.Args...)}
	for i := range runs {
		r, err := startOnce(ctx, cfg, timeout)
		if err != nil {
			return rep, fmt.Errorf("startup run %d of %d: %w", i+1, runs, err)
		}
		rep.Runs = append(rep.Runs, r)
	}
	pick := func(f func(StartupRun) float64) float64 {
		v := make([]float64, len(rep.Runs))
		for i, r := range rep.Runs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return Percentile(v, 50)
	}
	rep.MedianServing = pick(func(r StartupRun) float64 { return r.ServingLogS })
	rep.MedianListen = pick(func(r StartupRun) float64 { return r.ListenS })
	rep.MedianHealth = pick(func(r StartupRun) float64 { return r.HealthS })
	for _, r := range rep.Runs {
		rep.MaxPeakRSS = max(rep.MaxPeakRSS, r.PeakRSSBytes)
	}
	return rep, nil
}

// servingLine reports whether a log line is the server's "serving" line
// (slog text or JSON handler).
func servingLine(line string) bool {
	return strings.Contains(line, "msg=serving") || strings.Contains(line, `"msg":"serving"`)
}

func startOnce(ctx context.Context, cfg StartupConfig, timeout time.Duration) (StartupRun, error) {
	var r StartupRun
	dir, err := os.MkdirTemp("", "gptoss-bench-startup-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	addrFile := filepath.Join(dir, "addr")

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := append(slices.Clone(cfg.Args), "--host", "127.0.0.1", "--port", "0", "--addr-file", addrFile)
	cmd := exec.Command(cfg.Command, args...)
	out, err := cmd.StderrPipe()
	if err != nil {
		return r, err
	}
	cmd.Stdout = cmd.Stderr // one pipe: the log order is kept
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, fmt.Errorf("start %s: %w", cfg.Command, err)
	}
	exited := make(chan error, 1)
	// The log reader must finish before Wait: Wait closes the pipe.
	var logDone sync.WaitGroup
	servingAt := make(chan time.Duration, 1)
	tail := &lastLines{max: 20}
	logDone.Add(1)
	go func() {
		defer logDone.Done()
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			tail.add(line)
			if cfg.Log != nil {
				fmt.Fprintln(cfg.Log, line)
			}
			if !seen && servingLine(line) {
				seen = true
				servingAt <- time.Since(start)
			}
		}
	}()
	go func() {
		logDone.Wait()
		exited <- cmd.Wait()
	}()
	// stop ends the server however this run ends, and reaps it.
	reaped := false
	stop := func() error {
		if reaped {
			return nil
		}
		reaped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("the server ignored SIGTERM for 30s and was killed")
		}
	}

	hc := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var addr string
	var listening, healthy, logged bool
	for !(healthy && logged) {
		select {
		case <-ctx.Done():
			stop()
			return r, fmt.Errorf("the server was not healthy within %v: %w; its last output:\n%s", timeout, ctx.Err(), tail.String())
		case err := <-exited:
			reaped = true
			return r, fmt.Errorf("the server exited before it was healthy (%v); its last output:\n%s", err, tail.String())
		case d := <-servingAt:
			r.ServingLogS, logged = d.Seconds(), true
		case <-tick.C:
		}
		if addr == "" {
			if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
				addr = strings.TrimSpace(string(b))
			}
			continue
		}
		if !listening {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				continue
			}
			c.Close()
			r.ListenS, listening = time.Since(start).Seconds(), true
		}
		if !healthy {
			resp, err := hc.Get("http://" + addr + "/health")
			if err != nil {
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				r.HealthS, healthy = time.Since(start).Seconds(), true
			}
		}
	}
	r.Addr = addr
	rss, err := peakRSS(cmd.Process.Pid)
	if err == nil {
		r.PeakRSSBytes = rss
	}
	if err := stop(); err != nil && !killedByTerm(err) {
		return r, fmt.Errorf("stopping the server: %w", err)
	}
	return r, nil
}

// killedByTerm reports whether a server died of the SIGTERM we sent:
// that is the stop we asked for, not a failure.
func killedByTerm(err error) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM
}

// peakRSS reads VmHWM, the resident set's high-water mark, from
// /proc/PID/status.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", rest, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// lastLines keeps the last lines of a log for error messages.
type lastLines struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (l *lastLines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
	if len(l.lines) > l.max {
		l.lines = l.lines[len(l.lines)-l.max:]
	}
}

func (l *lastLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// WriteText prints the startup report.
func (rep *StartupReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "startup of: %s\n", strings.Join(rep.Command, " "))
	for i, r := range rep.Runs {
		fmt.Fprintf(w, "run %d: serving logged %.3fs, listening %.3fs, /health 200 %.3fs, peak RSS %s\n",
			i+1, r.ServingLogS, r.ListenS, r.HealthS, formatBytes(r.PeakRSSBytes))
	}
	fmt.Fprintf(w, "median: serving logged %.3fs, listening %.3fs, /health 200 %.3fs; max peak RSS %s\n",
		rep.MedianServing, rep.MedianListen, rep.MedianHealth, formatBytes(rep.MaxPeakRSS))
}

func formatBytes(b int64) string {
	if b <= 0 {
		return "unknown"
	}
	const mib = 1 << 20
	if b >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/mib)
}
