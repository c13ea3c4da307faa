package serve

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/gptoss/gptoss/backend/cpu"
	"github.com/gptoss/gptoss/engine"
	"github.com/gptoss/gptoss/harmony"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/model"
	"github.com/gptoss/gptoss/server"
	"github.com/gptoss/gptoss/synth"
	"github.com/gptoss/gptoss/tokenizer"
)

const tinyModelName = "gptoss-tiny-random"

// startTinyServer serves a synthetic tiny checkpoint (random weights, the
// real 201088-token vocabulary) over loopback, assembled as gptoss serve
// assembles it, and returns its base URL.
func startTinyServer(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tiny")
	cfg, err := synth.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Write(context.Background(), dir, cfg, synth.Options{Seed: 1, Force: true}); err != nil {
		t.Fatalf("write tiny checkpoint: %v", err)
	}
	ck, err := loader.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := model.New(cpu.New(), ck.Config, &ck.Weights)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	const maxLen = 2048
	eng, err := engine.New(m, engine.Options{MaxSeqs: 8, MaxModelLen: maxLen, KVCacheBytes: 256 << 20, MaxQueue: 64, StepTokens: 256})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	engineDone := make(chan error, 1)
	go func() { engineDone <- eng.Run(ctx) }()
	eos := make([]int32, len(ck.Config.EOSTokenIDs))
	for i, id := range ck.Config.EOSTokenIDs {
		eos[i] = int32(id)
	}
	srv := server.New(server.Config{
		ModelName: tinyModelName, RandomWeights: true, MaxModelLen: maxLen,
		EOSTokens: eos, AssistantStops: []int32{harmony.TokenReturn, harmony.TokenCall},
	}, eng, tok, m.Config)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		eng.Close()
		cancel()
		<-engineDone
	})
	return hs.URL
}
