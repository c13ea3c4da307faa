package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/gptoss/gptoss/backend/cuda"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/model"
)

// MemBWCUDA measures the GPU's read bandwidth with the read_bw kernel
// (best of rounds passes over size bytes), the roofline of decode there.
func MemBWCUDA(g *cuda.Backend, size int64, rounds int) (MemBWResult, error) {
	gbps, err := g.ReadBandwidth(size, rounds)
	if err != nil {
		return MemBWResult{}, fmt.Errorf("bench: membw on %s: %w", g.Name(), err)
	}
	return MemBWResult{GBps: gbps, Bytes: size, Rounds: rounds}, nil
}

// decodeCUDA is Decode on o.GPU: the read bandwidth measured with a
// kernel (before the weights take device memory), the theoretical peak
// from the device attributes, then the same prefill and decode loop as on
// the CPU. Every decode step reads its logits back, so a step's time is
// the device's time plus the host's; the bytes per token are counted by
// the backend as the CPU backend counts them (matrices and biases of the
// products run, the experts the router selected, each once per step, the
// keys and values attention read, the embedding row).
func decodeCUDA(ctx context.Context, dir string, o DecodeOptions) (*Report, error) {
	g := o.GPU
	if o.HugePages || o.Int8Experts {
		return nil, fmt.Errorf("bench: decode on %s: --hugepages and --int8-experts are CPU options", g.Name())
	}
	if o.MemBWBytes == 0 {
		o.MemBWBytes = 1 << 30
	}
	bw, err := MemBWCUDA(g, o.MemBWBytes, 10)
	if err != nil {
		return nil, err
	}
	if err := g.SetGraphs(!o.NoGraphs); err != nil {
		return nil, err
	}
	g.SetTensorCores(o.TensorCores)
	t0 := time.Now()
	ck, err := loader.Open(dir)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	m, err := model.New(g, ck.Config, &ck.Weights)
	if err != nil {
		return nil, err
	}
	if err := g.Synchronize(); err != nil {
		return nil, err
	}
	info := g.Device()
	r := &Report{
		Device: fmt.Sprintf("%s (%s)", g.Name(), info.Name), Model: dir,
		Layers: ck.Config.NumLayers, Experts: ck.Config.NumExperts,
		PromptTokens: o.PromptTokens, GenTokens: o.GenTokens, Repeats: o.Repeats, Depth: o.Depth,
		LoadSeconds: time.Since(t0).Seconds(), MemBWGBps: bw.GBps, PeakGBps: info.BandwidthGBs(),
		CheckpointBytes: weightBytes(&ck.Weights),
	}
	run := newRunner(m, o, &ck.Weights)
	run.gpu = g
	before := g.GraphStats()
	if err := run.measure(ctx, r); err != nil {
		return nil, err
	}
	gs := g.GraphStats().Since(before)
	r.Graphs = &gs
	return r, nil
}
