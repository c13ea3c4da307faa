package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gptoss/gptoss/backend/cuda"
)

// TestDeviceFlag: auto picks CUDA when it can, else the CPU with one line
// saying why; an explicit cuda without a usable GPU is an error; a bad
// value is refused.
func TestDeviceFlag(t *testing.T) {
	_, gpuErr := cuda.Devices()
	var log bytes.Buffer
	fs := newFlags("test", &log)
	var mf modelFlags
	mf.register(fs)
	if err := fs.Parse([]string{"--device", "auto"}); err != nil {
		t.Fatal(err)
	}
	be, err := mf.backend()
	if err != nil {
		t.Fatal(err)
	}
	if gpuErr != nil {
		if be.Name() != "cpu" || strings.Count(log.String(), "\n") != 1 || !strings.Contains(log.String(), "using the CPU") {
			t.Errorf("auto without a GPU: backend %s, log %q", be.Name(), log.String())
		}
		t.Logf("auto: %s", strings.TrimSpace(log.String()))
		mf.device = "cuda"
		if _, err := mf.backend(); err == nil || !strings.Contains(err.Error(), "--device cuda") {
			t.Errorf("--device cuda without a GPU: err %v", err)
		} else {
			t.Logf("cuda: %v", err)
		}
	} else if be.Name() != "cuda:0" || log.Len() != 0 {
		t.Errorf("auto with a GPU: backend %s, log %q", be.Name(), log.String())
	}
	mf.device = "cpu"
	if be, err := mf.backend(); err != nil || be.Name() != "cpu" {
		t.Errorf("--device cpu: %v, %v", be, err)
	}
	mf.device = "gpu"
	if _, err := mf.backend(); err == nil {
		t.Error("--device gpu accepted")
	}
}
