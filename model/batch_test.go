package model_test

import (
	"context"
	"testing"

	"github.com/gptoss/gptoss/backend"
	"github.com/gptoss/gptoss/model"
)

// TestBatchInvariance: a sequence's logits must not depend on what else is
// in the batch — bit for bit — so greedy output is the same whether a
// request runs alone or among others (continuous batching mixes one
// sequence's decode rows with another's prefill chunk). Every kernel must
// therefore compute a row with a reduction order independent of the row
// count.
func TestBatchInvariance(t *testing.T) {
	m, e := load(t, fixtures[1])
	vocab := m.Config.VocabSize
	a, b := e.Tokens[:20], e.Tokens[10:48]

	// Alone: prefill 5 tokens, then decode one at a time.
	alone, err := m.Logits(context.Background(), a[:5], 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := m.NewCache(64)
	st := m.NewState(16)
	out := make([]float32, 16*vocab)
	if err := m.Forward(st, batchOf(a[:5], seg(ca, 0, 0, 5)), out, nil); err != nil {
		t.Fatal(err)
	}
	aloneDecode := make([][]float32, 0, len(a))
	for p := 5; p < len(a); p++ {
		if err := m.Forward(st, batchOf(a[p:p+1], seg(ca, 0, p, 1)), out, nil); err != nil {
			t.Fatal(err)
		}
		aloneDecode = append(aloneDecode, append([]float32(nil), out[:vocab]...))
	}

	// Mixed: A's prefill shares a batch with B's first chunk, then every
	// decode step of A shares a batch with a chunk of B's prefill or decode.
	ca2, _ := m.NewCache(64)
	cb, _ := m.NewCache(64)
	tokens := append(append([]int32(nil), a[:5]...), b[:7]...)
	if err := m.Forward(st, backendBatch(tokens, []backend.Segment{seg(ca2, 0, 0, 5), seg(cb, 5, 0, 7)}, 5), out, nil); err != nil {
		t.Fatal(err)
	}
	for j := range 5 {
		if !equal(out[j*vocab:(j+1)*vocab], alone[j*vocab:(j+1)*vocab]) {
			t.Fatalf("prefill row %d differs when batched with another sequence", j)
		}
	}
	bpos := 7
	for p := 5; p < len(a); p++ {
		n := 1 + p%2 // B advances by one or two rows
		tokens := append([]int32{a[p]}, b[bpos:bpos+n]...)
		segs := []backend.Segment{seg(ca2, 0, p, 1), seg(cb, 1, bpos, n)}
		if err := m.Forward(st, backendBatch(tokens, segs, 1), out, nil); err != nil {
			t.Fatal(err)
		}
		bpos += n
		if !equal(out[:vocab], aloneDecode[p-5]) {
			t.Fatalf("decode at position %d differs when batched with %d rows of another sequence", p, n)
		}
	}
}

func seg(c backend.KVCache, row, pos, n int) backend.Segment {
	return backend.Segment{Cache: c, Row: row, Pos: pos, Len: n}
}

func batchOf(tokens []int32, s backend.Segment) model.Batch {
	return backendBatch(tokens, []backend.Segment{s}, len(tokens))
}

// backendBatch asks for the logits of the first nLogits rows.
func backendBatch(tokens []int32, segs []backend.Segment, nLogits int) model.Batch {
	rows := make([]int, nLogits)
	for i := range rows {
		rows[i] = i
	}
	return model.Batch{Tokens: tokens, Segments: segs, LogitRows: rows}
}

func equal(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}
