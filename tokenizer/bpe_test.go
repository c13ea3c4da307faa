package tokenizer

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// refMerge is tiktoken's _byte_pair_merge written plainly, without the
// stack-array or heap optimisations, as the oracle for both variants.
func refMerge(tok *Tokenizer, piece string) []int {
	parts := make([]int, len(piece)+1)
	for i := range parts {
		parts[i] = i
	}
	rank := func(i int) (uint32, bool) {
		if i+2 >= len(parts) {
			return 0, false
		}
		r, ok := tok.ranks[piece[parts[i]:parts[i+2]]]
		return r, ok
	}
	for {
		best, bi := uint32(noRank), -1
		for i := 0; i+1 < len(parts)-1; i++ {
			if r, ok := rank(i); ok && r < best {
				best, bi = r, i
			}
		}
		if bi < 0 {
			break
		}
		parts = append(parts[:bi+1], parts[bi+2:]...)
	}
	var ids []int
	for i := 0; i+1 < len(parts); i++ {
		ids = append(ids, int(tok.ranks[piece[parts[i]:parts[i+1]]]))
	}
	return ids
}

func randomPiece(r *rand.Rand, tok *Tokenizer, maxLen int) string {
	var sb strings.Builder
	n := 1 + r.IntN(maxLen)
	for sb.Len() < n {
		switch r.IntN(4) {
		case 0: // a random byte
			sb.WriteByte(byte(r.IntN(256)))
		case 1: // a repeated letter, the classic tie case ("aaaa")
			sb.WriteString(strings.Repeat("a", 1+r.IntN(6)))
		default: // a real token, so merges actually happen
			s, _ := tok.TokenString(r.IntN(NumRanks))
			sb.WriteString(s)
		}
	}
	return sb.String()[:n]
}

func TestBytePairMergeVariants(t *testing.T) {
	tok := defaultTok(t)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		maxLen := smallPiece
		if i%4 == 0 {
			maxLen = 400
		}
		p := randomPiece(r, tok, maxLen)
		want := refMerge(tok, p)
		if got := tok.bytePairMergeHeap(nil, p); !slices.Equal(got, want) {
			t.Fatalf("heap merge of %q = %v, want %v", p, got, want)
		}
		if len(p) <= smallPiece {
			if got := tok.bytePairMerge(nil, p); !slices.Equal(got, want) {
				t.Fatalf("array merge of %q = %v, want %v", p, got, want)
			}
		}
	}
}

func TestLongPieces(t *testing.T) {
	tok := defaultTok(t)
	for _, s := range []string{
		strings.Repeat("a", 10000),
		strings.Repeat("中", 5000),
		strings.Repeat("!?", 5000),
		strings.Repeat("🙂", 3000),
	} {
		ids := tok.Encode(s)
		if d := tok.Decode(ids); d != s {
			t.Errorf("round trip of %.20q... failed", s)
		}
	}
}
