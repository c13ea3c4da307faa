package serve

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeServerEnv makes this test binary act as a server for the startup
// benchmark (the os/exec helper-process pattern).
const fakeServerEnv = "GPTOSS_BENCH_FAKE_SERVER"

// TestFakeServerProcess is not a test: run with fakeServerEnv set it is
// the server the startup benchmark starts. It takes serve's --addr-file,
// waits a little as a model load would, logs "serving" like gptoss serve,
// answers /health, and exits on SIGTERM.
func TestFakeServerProcess(t *testing.T) {
	mode := os.Getenv(fakeServerEnv)
	if mode == "" {
		t.Skip("helper process")
	}
	addrFile := ""
	args := os.Args
	for i, a := range args {
		if a == "--addr-file" && i+1 < len(args) {
			addrFile = args[i+1]
		}
	}
	if mode == "crash" {
		fmt.Fprintln(os.Stderr, "level=ERROR msg=\"cannot load model\"")
		os.Exit(3)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	time.Sleep(50 * time.Millisecond)
	ballast := make([]byte, 32<<20) // resident memory to find in VmHWM
	for i := range ballast {
		ballast[i] = 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "time=now level=INFO msg=serving model=fake addr=http://%s\n", ln.Addr())
	os.WriteFile(addrFile, []byte(ln.Addr().String()), 0o644)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.WriteHeader(http.StatusOK)
		}
	}))
	<-term
	_ = ballast[len(ballast)-1]
	os.Exit(0)
}

func TestStartup(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	t.Setenv(fakeServerEnv, "ok")
	rep, err := Startup(context.Background(), StartupConfig{
		Command: os.Args[0], Args: []string{"-test.run=^TestFakeServerProcess$", "--"}, Runs: 2, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 2 {
		t.Fatalf("%d runs", len(rep.Runs))
	}
	for i, r := range rep.Runs {
		if !(r.ServingLogS >= 0.05 && r.ListenS > 0 && r.HealthS >= r.ListenS) {
			t.Errorf("run %d: serving %v listen %v health %v", i, r.ServingLogS, r.ListenS, r.HealthS)
		}
		if _, err := os.Stat("/proc/self/status"); err == nil && r.PeakRSSBytes < 32<<20 {
			t.Errorf("run %d: peak RSS %d, the server touched 32 MiB", i, r.PeakRSSBytes)
		}
	}
	if rep.MedianHealth <= 0 || rep.MaxPeakRSS < rep.Runs[0].PeakRSSBytes {
		t.Errorf("report %+v", rep)
	}
}

func TestStartupServerCrash(t *testing.T) {
	t.Setenv(fakeServerEnv, "crash")
	_, err := Startup(context.Background(), StartupConfig{
		Command: os.Args[0], Args: []string{"-test.run=^TestFakeServerProcess$", "--"}, Runs: 1, Timeout: time.Minute,
	})
	if err == nil || !strings.Contains(err.Error(), "cannot load model") {
		t.Errorf("error %v should quote the server's last output", err)
	}
}
