package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/gptoss/gptoss/backend/cpu"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/model"
)

// modelFlags are the flags every command that loads a checkpoint shares.
type modelFlags struct {
	dir    string
	layout string
}

func (f *modelFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.dir, "model", "", "checkpoint directory (Hugging Face layout, or original/)")
	fs.StringVar(&f.layout, "layout", "auto", "checkpoint layout: auto, hf or original")
}

// open maps the checkpoint. The caller closes it after the model is done.
func (f *modelFlags) open() (*loader.Checkpoint, error) {
	if f.dir == "" {
		return nil, fmt.Errorf("--model DIR is required")
	}
	switch f.layout {
	case "auto", "":
		return loader.Open(f.dir)
	case loader.LayoutHF, loader.LayoutOriginal:
		return loader.OpenLayout(f.dir, f.layout)
	}
	return nil, fmt.Errorf("--layout %q: want auto, hf or original", f.layout)
}

// load maps the checkpoint and binds it to the CPU backend.
func (f *modelFlags) load() (*model.Model, *loader.Checkpoint, error) {
	ck, err := f.open()
	if err != nil {
		return nil, nil, err
	}
	m, err := model.New(cpu.New(), ck.Config, &ck.Weights)
	if err != nil {
		ck.Close()
		return nil, nil, err
	}
	return m, ck, nil
}
