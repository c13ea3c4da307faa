package model

import (
	"context"
	"fmt"

	"github.com/gptoss/gptoss/backend"
)

// Logits runs tokens through a fresh sequence starting at position 0, in
// chunks of at most chunk tokens (len(tokens) is one prefill, 1 is
// token-by-token decode through the KV cache), and returns the logits at
// every position, [len(tokens), vocab] row-major. trace may be nil; it sees
// the rows of each chunk as they are computed.
func (m *Model) Logits(ctx context.Context, tokens []int32, chunk int, trace Tracer) ([]float32, error) {
	if len(tokens) == 0 {
		return nil, fmt.Errorf("model: no tokens")
	}
	if chunk <= 0 {
		return nil, fmt.Errorf("model: chunk size %d must be positive", chunk)
	}
	chunk = min(chunk, len(tokens))
	cache, err := m.NewCache(len(tokens))
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	defer cache.Free()
	st := m.NewState(chunk)
	vocab := m.Config.VocabSize
	out := make([]float32, len(tokens)*vocab)
	rows := make([]int, chunk)
	for start := 0; start < len(tokens); start += chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(chunk, len(tokens)-start)
		for i := range n {
			rows[i] = i
		}
		b := Batch{
			Tokens:    tokens[start : start+n],
			Segments:  []backend.Segment{{Cache: cache, Row: 0, Pos: start, Len: n}},
			LogitRows: rows[:n],
		}
		if err := m.Forward(st, b, out[start*vocab:(start+n)*vocab], trace); err != nil {
			return nil, err
		}
	}
	return out, nil
}
