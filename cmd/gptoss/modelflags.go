package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/backend/cpu"
	"github.com/gptoss/gptoss/backend/cuda"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/model"
)

// modelFlags are the flags every command that loads a checkpoint shares.
type modelFlags struct {
	dir    string
	layout string
	device string
	log    io.Writer // where auto says why it chose the CPU
	// The CPU backend's options (registerCPU: the commands that run the
	// model at length), refused on CUDA.
	hugePages, int8Experts bool
	// The CUDA backend's option, refused on the CPU.
	tensorCores bool
}

func (f *modelFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.dir, "model", "", "checkpoint directory (Hugging Face layout, or original/)")
	fs.StringVar(&f.layout, "layout", "auto", "checkpoint layout: auto, hf or original")
	fs.StringVar(&f.device, "device", "auto", "compute device: auto (CUDA if a GPU is usable, else CPU), cpu, cuda or cuda:N")
	f.log = fs.Output()
}

// registerCPU adds the backends' options (the CPU's and CUDA's).
func (f *modelFlags) registerCPU(fs *pflag.FlagSet) {
	fs.BoolVar(&f.tensorCores, "tensor-cores", false, "CUDA: batch products (prefill, batched decode, MoE) on the tensor cores, BF16 weights × split-BF16 activations (approximate: 4× the default golden bound)")
	fs.BoolVar(&f.hugePages, "hugepages", false, "CPU: copy the weights into transparent huge pages at load (slower load, a few % faster decode)")
	fs.BoolVar(&f.int8Experts, "int8-experts", false, "CPU: MoE experts with int8 activations (approximate; faster prefill and decode, AVX2 or AVX-512)")
}

// errInt8Experts refuses --int8-experts where its kernel cannot run: the
// portable twin would be many times slower than the float32 kernels.
var errInt8Experts = errors.New("--int8-experts needs the AVX2 or AVX-512 kernels, which this CPU, build (CGO_ENABLED=0) or --isa does not offer")

// cpuBackend is a CPU backend with the --hugepages and --int8-experts
// options applied.
func (f *modelFlags) cpuBackend() (*cpu.Backend, error) {
	b := cpu.New()
	if f.int8Experts && !b.ISA().Int8Kernel() {
		b.Close()
		return nil, errInt8Experts
	}
	b.SetHugePages(f.hugePages)
	b.SetInt8Experts(f.int8Experts)
	return b, nil
}

// backend opens the --device backend. auto falls back to the CPU with one
// line on stderr saying why; an explicit cuda fails instead.
func (f *modelFlags) backend() (backend.Backend, error) {
	w := f.log
	if w == nil {
		w = os.Stderr
	}
	g, err := cuda.OpenDevice(f.device, w)
	if err != nil {
		return nil, err
	}
	if g == nil {
		if f.tensorCores {
			return nil, fmt.Errorf("--tensor-cores is a CUDA option; this run uses the CPU")
		}
		return f.cpuBackend()
	}
	if f.hugePages || f.int8Experts {
		g.Close()
		return nil, fmt.Errorf("--hugepages and --int8-experts are CPU options; add --device cpu to use them")
	}
	g.SetTensorCores(f.tensorCores)
	return g, nil
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

// load maps the checkpoint and binds it to the --device backend.
func (f *modelFlags) load() (*model.Model, *loader.Checkpoint, error) {
	ck, err := f.open()
	if err != nil {
		return nil, nil, err
	}
	be, err := f.backend()
	if err != nil {
		ck.Close()
		return nil, nil, err
	}
	m, err := model.New(be, ck.Config, &ck.Weights)
	if err != nil {
		ck.Close()
		return nil, nil, err
	}
	return m, ck, nil
}
