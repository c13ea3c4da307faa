package tokenizer

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// byteIDs returns the single-byte token ids of s, to split characters at
// every byte.
func byteIDs(t *testing.T, tok *Tokenizer, s string) []int {
	t.Helper()
	var ids []int
	for i := 0; i < len(s); i++ {
		id, ok := tok.Lookup(s[i : i+1])
		if !ok {
			t.Fatalf("no token for byte %#x", s[i])
		}
		ids = append(ids, id)
	}
	return ids
}

func streamAll(t *testing.T, tok *Tokenizer, ids []int) string {
	t.Helper()
	d := tok.NewStreamDecoder()
	var sb strings.Builder
	for _, id := range ids {
		out := d.Add(id)
		if !utf8.ValidString(out) {
			t.Fatalf("Add(%d) emitted invalid UTF-8 %q", id, out)
		}
		sb.WriteString(out)
	}
	out := d.Flush()
	if !utf8.ValidString(out) {
		t.Fatalf("Flush emitted invalid UTF-8 %q", out)
	}
	if d.Pending() {
		t.Fatal("bytes pending after Flush")
	}
	return sb.String() + out
}

func TestStreamDecoderVectors(t *testing.T) {
	tok := defaultTok(t)
	split := 0
	for i, v := range loadVectors(t) {
		ids := tok.EncodeWithSpecials(v.Text)
		for _, id := range ids {
			if !utf8.Valid(tok.TokenBytes(id)) {
				split++
			}
		}
		if got := streamAll(t, tok, ids); got != v.Text {
			t.Errorf("#%d stream = %q, want %q", i, got, v.Text)
		}
		if got := streamAll(t, tok, byteIDs(t, tok, v.Text)); got != v.Text {
			t.Errorf("#%d byte-wise stream = %q, want %q", i, got, v.Text)
		}
	}
	if split == 0 {
		t.Error("no vector has a token holding partial UTF-8; the test proves nothing")
	}
	t.Logf("%d tokens with partial UTF-8", split)
}

func TestStreamDecoderHoldsPartialCharacters(t *testing.T) {
	tok := defaultTok(t)
	for _, s := range []string{"🙂", "中", "é", "👨\u200d👩\u200d👧"} {
		d := tok.NewStreamDecoder()
		ids := byteIDs(t, tok, s)
		var got string
		for k, id := range ids {
			out := d.Add(id)
			got += out
			if out != "" && !utf8.ValidString(out) {
				t.Fatalf("%q: invalid output %q", s, out)
			}
			if k == 0 && len(ids) > 1 && out != "" {
				t.Errorf("%q: emitted %q after a lead byte", s, out)
			}
		}
		if got != s || d.Pending() {
			t.Errorf("%q: streamed %q, pending %v", s, got, d.Pending())
		}
	}
}

// Expected outputs follow U+FFFD substitution of maximal subparts (what
// Python's bytes.decode(errors="replace") and Rust's from_utf8_lossy give).
func TestDecodeInvalid(t *testing.T) {
	tok := defaultTok(t)
	cases := []struct{ in, want string }{
		{"\xe2\x82A", "\uFFFDA"},
		{"\xe2\x82", "\uFFFD"},
		{"\xf0\x80\x80", "\uFFFD\uFFFD\uFFFD"},
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"},
		{"\xc0\xaf", "\uFFFD\uFFFD"},
		{"\xf4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"\xf0\x9f\x99", "\uFFFD"},
		{"\xf0\x9f\x99<|end|>", "\uFFFD<|end|>"},
		{"a\xffb\x80", "a\uFFFDb\uFFFD"},
		{"\xe0\xa0\x80\xe0\x9f\x80", "\u0800\uFFFD\uFFFD\uFFFD"},
	}
	for _, c := range cases {
		var ids []int
		rest := c.in
		for rest != "" {
			if strings.HasPrefix(rest, "<|end|>") {
				ids = append(ids, End)
				rest = rest[len("<|end|>"):]
				continue
			}
			ids = append(ids, byteIDs(t, tok, rest[:1])...)
			rest = rest[1:]
		}
		if got := tok.Decode(ids); got != c.want {
			t.Errorf("Decode(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := streamAll(t, tok, ids); got != c.want {
			t.Errorf("stream(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := tok.Decode([]int{-1, NumVocab}); got != "\uFFFD\uFFFD" {
		t.Errorf("unknown ids decode to %q", got)
	}
}

// Decode and the stream decoder agree on arbitrary id sequences, and the
// stream only emits valid UTF-8 however the bytes fall.
func TestStreamMatchesDecodeRandom(t *testing.T) {
	tok := defaultTok(t)
	r := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		ids := make([]int, 1+r.IntN(12))
		for i := range ids {
			switch r.IntN(3) {
			case 0:
				ids[i] = r.IntN(256) // single bytes: lots of partial UTF-8
			default:
				ids[i] = r.IntN(NumRanks)
			}
		}
		want := tok.Decode(ids)
		if !utf8.ValidString(want) {
			t.Fatalf("Decode(%v) invalid: %q", ids, want)
		}
		if got := streamAll(t, tok, ids); got != want {
			t.Fatalf("stream(%v) = %q, Decode = %q", ids, got, want)
		}
		if raw := tok.DecodeBytes(ids); utf8.Valid(raw) && string(raw) != want {
			t.Fatalf("valid bytes changed by Decode: %q vs %q", raw, want)
		}
	}
}
