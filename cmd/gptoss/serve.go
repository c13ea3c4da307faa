package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gptoss/gptoss/engine"
	"github.com/gptoss/gptoss/harmony"
	"github.com/gptoss/gptoss/server"
	"github.com/gptoss/gptoss/synth"
	"github.com/gptoss/gptoss/tokenizer"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	var mf modelFlags
	mf.register(fs)
	mf.registerCPU(fs)
	host := fs.String("host", "127.0.0.1", "address to listen on")
	port := fs.Int("port", 8000, "port to listen on (0 picks a free one)")
	name := fs.String("served-model-name", "", "model id clients send (default: the checkpoint directory's name)")
	maxSeqs := fs.Int("max-num-seqs", 16, "sequences decoded together in one batch")
	maxLen := fs.Int("max-model-len", 8192, "prompt + generated tokens per request")
	kvMem := fs.String("kv-cache-memory", "2GiB", "memory the KV caches of running requests may reserve")
	maxQueue := fs.Int("max-queue", 256, "waiting requests beyond which new ones get 429")
	stepTokens := fs.Int("max-num-batched-tokens", 512, "token budget of one engine step (decode rows + prefill chunks)")
	apiKey := fs.String("api-key", os.Getenv("GPTOSS_API_KEY"), "require this bearer token on /v1/* (default $GPTOSS_API_KEY)")
	cacheDir := fs.String("cache-dir", defaultCacheDir(), "where the default synthetic model is created on first run")
	addrFile := fs.String("addr-file", "", "write the listening address here once serving (for scripts using --port 0)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	kvBytes, err := synth.ParseSize(*kvMem)
	if err != nil {
		return fmt.Errorf("--kv-cache-memory: %w", err)
	}
	random := false
	if mf.dir == "" {
		dir, err := ensureDefaultModel(ctx, *cacheDir, log)
		if err != nil {
			return err
		}
		mf.dir, random = dir, true
	}
	m, ck, err := mf.load()
	if err != nil {
		return err
	}
	defer ck.Close()
	if *name == "" {
		*name = filepath.Base(filepath.Clean(mf.dir))
		if random {
			*name = "gptoss-tiny-random"
		}
	}
	tok, err := tokenizer.Load(mf.dir)
	if err != nil {
		return err
	}
	if m.Config.MaxPositions > 0 && *maxLen > m.Config.MaxPositions {
		*maxLen = m.Config.MaxPositions
	}
	eng, err := engine.New(m, engine.Options{MaxSeqs: *maxSeqs, MaxModelLen: *maxLen, KVCacheBytes: kvBytes, MaxQueue: *maxQueue, StepTokens: *stepTokens})
	if err != nil {
		return err
	}
	eos := make([]int32, len(ck.Config.EOSTokenIDs))
	for i, id := range ck.Config.EOSTokenIDs {
		eos[i] = int32(id)
	}
	srv := server.New(server.Config{
		ModelName: *name, RandomWeights: random, APIKey: *apiKey, MaxModelLen: *maxLen,
		EOSTokens: eos, AssistantStops: assistantStops(),
	}, eng, tok, m.Config)

	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	engineDone := make(chan error, 1)
	go func() { engineDone <- eng.Run(context.Background()) }()
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second}
	serveDone := make(chan error, 1)
	go func() { serveDone <- hs.Serve(ln) }()
	if random {
		log.Warn("serving a synthetic checkpoint with RANDOM weights: its output means nothing; pass --model DIR for a real one", "dir", mf.dir)
	}
	log.Info("serving", "model", *name, "dir", mf.dir, "addr", "http://"+ln.Addr().String(), "max_num_seqs", *maxSeqs, "max_model_len", *maxLen, "kv_cache_bytes", kvBytes)
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()), 0o644); err != nil {
			return err
		}
	}

	select {
	case err := <-serveDone:
		eng.Close()
		return err
	case <-ctx.Done():
	}
	// SIGTERM or SIGINT: stop accepting, let in-flight requests finish,
	// then stop the engine.
	log.Info("shutting down: draining requests in flight")
	srv.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err = hs.Shutdown(shutdownCtx)
	eng.Close()
	if engErr := <-engineDone; engErr != nil && !errors.Is(engErr, context.Canceled) {
		err = errors.Join(err, engErr)
	}
	log.Info("stopped")
	return err
}

func defaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "gptoss")
	}
	return filepath.Join(os.TempDir(), "gptoss")
}

// ensureDefaultModel creates the tiny synthetic checkpoint on first use.
func ensureDefaultModel(ctx context.Context, cacheDir string, log *slog.Logger) (string, error) {
	dir := filepath.Join(cacheDir, "tiny-seed1")
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		return dir, nil
	}
	log.Info("creating the default synthetic tiny model (random weights)", "dir", dir)
	cfg, err := synth.Preset("tiny")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if _, err := synth.Write(ctx, dir, cfg, synth.Options{Seed: 1, Force: true}); err != nil {
		return "", err
	}
	return dir, nil
}

// assistantStops are the tokens that end an assistant turn, as harmony
// defines them, in the engine's id type.
func assistantStops() []int32 {
	ids := harmony.StopTokens()
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}
