package tokenizer

import (
	"container/heap"
	"math"
)

const noRank = math.MaxUint32

// smallPiece bounds the pieces merged with fixed stack arrays; longer pieces
// (rare: long CJK runs, long punctuation runs) use the heap variant so a
// hostile input cannot make encoding quadratic.
const smallPiece = 64

// bytePairMerge appends the ids of piece (not itself a token) using
// tiktoken's rule: start from single bytes and repeatedly merge the adjacent
// pair whose concatenation has the lowest rank (leftmost on ties) until no
// adjacent concatenation is a token.
func (t *Tokenizer) bytePairMerge(dst []int, piece string) []int {
	if len(piece) > smallPiece {
		return t.bytePairMergeHeap(dst, piece)
	}
	// starts[i] is the start of part i; starts[n] == len(piece). ranks[i] is
	// the rank of parts i and i+1 merged.
	var startsBuf [smallPiece + 1]int32
	var ranksBuf [smallPiece]uint32
	n := len(piece)
	starts, ranks := startsBuf[:n+1], ranksBuf[:n]
	for i := range n {
		starts[i] = int32(i)
	}
	starts[n] = int32(n)
	mergedRank := func(i int) uint32 { // rank of parts i and i+1 merged
		if i+2 >= len(starts) {
			return noRank
		}
		if r, ok := t.ranks[piece[starts[i]:starts[i+2]]]; ok {
			return r
		}
		return noRank
	}
	for i := range n - 1 {
		ranks[i] = t.pairRank[int(piece[i])<<8|int(piece[i+1])]
	}
	ranks[n-1] = noRank
	for {
		best, bi := uint32(noRank), -1
		for i, r := range ranks {
			if r < best {
				best, bi = r, i
			}
		}
		if bi < 0 {
			break
		}
		// Merge parts bi and bi+1: drop start bi+1 and rank bi+1, then refresh
		// the two pair ranks that now involve the merged part.
		starts = append(starts[:bi+1], starts[bi+2:]...)
		ranks = append(ranks[:bi+1], ranks[bi+2:]...)
		ranks[bi] = mergedRank(bi)
		if bi > 0 {
			ranks[bi-1] = mergedRank(bi - 1)
		}
	}
	for i := 0; i+1 < len(starts); i++ {
		dst = append(dst, int(t.ranks[piece[starts[i]:starts[i+1]]]))
	}
	return dst
}

// mergeNode is one part in the heap variant's doubly linked list.
type mergeNode struct {
	start      int
	prev, next int // indices into nodes; -1 at the ends
	gen        int // bumped whenever this node's pair rank changes
}

type mergeCand struct {
	rank  uint32
	start int // byte offset of the left part: leftmost wins ties
	node  int
	gen   int
}

type mergeHeap []mergeCand

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].start < h[j].start
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(mergeCand)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// bytePairMergeHeap computes the same merges as bytePairMerge in
// O(n log n): candidates are keyed by (rank, start), which is exactly the
// linear scan's "lowest rank, leftmost" choice, and stale candidates are
// skipped by generation.
func (t *Tokenizer) bytePairMergeHeap(dst []int, piece string) []int {
	n := len(piece)
	nodes := make([]mergeNode, n)
	for i := range nodes {
		nodes[i] = mergeNode{start: i, prev: i - 1, next: i + 1}
	}
	nodes[n-1].next = -1
	end := func(i int) int { // end offset of part i
		if nx := nodes[i].next; nx >= 0 {
			return nodes[nx].start
		}
		return n
	}
	h := make(mergeHeap, 0, n)
	push := func(i int) {
		nodes[i].gen++
		nx := nodes[i].next
		if nx < 0 {
			return
		}
		if r, ok := t.ranks[piece[nodes[i].start:end(nx)]]; ok {
			heap.Push(&h, mergeCand{rank: r, start: nodes[i].start, node: i, gen: nodes[i].gen})
		}
	}
	for i := range nodes {
		nodes[i].gen++
		if i+1 < n {
			if r := t.pairRank[int(piece[i])<<8|int(piece[i+1])]; r != noRank {
				h = append(h, mergeCand{rank: r, start: i, node: i, gen: nodes[i].gen})
			}
		}
	}
	heap.Init(&h)
	for h.Len() > 0 {
		c := heap.Pop(&h).(mergeCand)
		i := c.node
		if nodes[i].gen != c.gen {
			continue // stale: this node's pair changed since c was queued
		}
		// Merge i with its successor.
		nx := nodes[i].next
		nodes[i].next = nodes[nx].next
		if nn := nodes[nx].next; nn >= 0 {
			nodes[nn].prev = i
		}
		nodes[nx].gen++ // its candidate (if any) is dead
		push(i)
		if pv := nodes[i].prev; pv >= 0 {
			push(pv)
		}
	}
	for i := 0; i >= 0; i = nodes[i].next {
		dst = append(dst, int(t.ranks[piece[nodes[i].start:end(i)]]))
	}
	return dst
}
