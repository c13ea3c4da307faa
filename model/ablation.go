package model

import (
	"fmt"
	"slices"

	"github.com/gptoss/gptoss/loader"
)

// AttentionChange alters a model's attention for ablation studies; the
// zero value changes nothing.
type AttentionChange struct {
	// NoSinks sets every sink logit to −∞, so each softmax is the plain
	// one over the allowed keys (weights sum to one).
	NoSinks bool
	// Window, when positive, replaces the sliding window width of the
	// sliding layers; full layers stay full.
	Window int
}

// WithAttention returns a copy of m with its attention changed. The copy
// shares m's weights and backend; caches must come from the copy's
// NewCache, which carries the changed window.
func (m *Model) WithAttention(c AttentionChange) (*Model, error) {
	if c.Window < 0 {
		return nil, fmt.Errorf("model: attention window %d is negative", c.Window)
	}
	cp := *m
	cp.layers = slices.Clone(m.layers)
	if c.Window > 0 {
		cp.Config.SlidingWindow = c.Window
	}
	if c.NoSinks {
		// BF16 −∞ (0xFF80) for every head, bound like the stored sinks.
		nh := m.Config.NumHeads
		data := make([]byte, 2*nh)
		for i := range nh {
			data[2*i], data[2*i+1] = 0x80, 0xFF
		}
		sinks, err := m.be.Weight(loader.Tensor{Name: "sinks (removed)", DType: loader.BF16, Shape: []int{nh}, Data: data})
		if err != nil {
			return nil, fmt.Errorf("model: removing sinks: %w", err)
		}
		for l := range cp.layers {
			cp.layers[l].sinks = sinks
		}
	}
	return &cp, nil
}
