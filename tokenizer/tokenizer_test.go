package tokenizer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

type vector struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "tokenizer", "o200k_harmony-vectors.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(data, &vs); err != nil {
		tb.Fatal(err)
	}
	if len(vs) != 327 {
		tb.Fatalf("got %d vectors, want 327", len(vs))
	}
	return vs
}

// shared parses the embedded table once for the whole test binary; tests only
// read it, which is what a *Tokenizer allows concurrently.
var shared = sync.OnceValues(Default)

func defaultTok(tb testing.TB) *Tokenizer {
	tb.Helper()
	tok, err := shared()
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func hasSpecialText(s string) bool { return strings.Contains(s, "<|") }

func TestEmbeddedSHA256(t *testing.T) {
	data, err := O200kBase()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d" {
		t.Fatalf("sha256 %s", got)
	}
}

func TestDefaultConstructionTime(t *testing.T) {
	start := time.Now()
	tok, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("Default() took %v", d)
	if d > time.Second {
		t.Errorf("Default() took %v, want < 1s", d)
	}
	if tok.NumTokens() != NumVocab {
		t.Errorf("NumTokens %d, want %d", tok.NumTokens(), NumVocab)
	}
}

func TestSpecials(t *testing.T) {
	tok := defaultTok(t)
	want := map[string]int{
		"<|startoftext|>": StartOfText, "<|endoftext|>": EndOfText, "<|return|>": Return,
		"<|constrain|>": Constrain, "<|channel|>": Channel, "<|start|>": Start, "<|end|>": End,
		"<|message|>": Message, "<|call|>": Call, "<|endofprompt|>": EndOfPrompt,
		"<|reserved_200000|>": 200000, "<|reserved_200001|>": 200001, "<|reserved_200004|>": 200004,
		"<|reserved_200013|>": 200013, "<|reserved_201087|>": 201087,
	}
	ids := map[int]string{199998: "<|startoftext|>", 199999: "<|endoftext|>", 200002: "<|return|>",
		200003: "<|constrain|>", 200005: "<|channel|>", 200006: "<|start|>", 200007: "<|end|>",
		200008: "<|message|>", 200012: "<|call|>", 200018: "<|endofprompt|>"}
	for id, name := range ids {
		if want[name] != id {
			t.Errorf("constant for %s = %d, want %d", name, want[name], id)
		}
	}
	for name, id := range want {
		got, ok := tok.SpecialID(name)
		if !ok || got != id {
			t.Errorf("SpecialID(%q) = %d, %v; want %d", name, got, ok, id)
		}
		if s := string(tok.TokenBytes(id)); s != name {
			t.Errorf("TokenBytes(%d) = %q, want %q", id, s, name)
		}
		if !tok.IsSpecial(id) {
			t.Errorf("IsSpecial(%d) = false", id)
		}
		if d := tok.Decode([]int{id}); d != name {
			t.Errorf("Decode(%d) = %q", id, d)
		}
	}
	for id := NumRanks; id < NumVocab; id++ {
		if !tok.IsSpecial(id) {
			t.Fatalf("id %d not special", id)
		}
	}
	for _, id := range []int{0, 1000, NumRanks - 1} {
		if tok.IsSpecial(id) {
			t.Errorf("ordinary id %d reported special", id)
		}
	}
	if _, ok := tok.SpecialID("<|reserved_201088|>"); ok {
		t.Error("reserved id past the vocab exists")
	}
	for _, id := range []int{-1, NumVocab, 1 << 40} {
		if b := tok.TokenBytes(id); b != nil {
			t.Errorf("TokenBytes(%d) = %q, want nil", id, b)
		}
	}
	// Header words from harmony's tests (spec §7.1).
	got := tok.EncodeWithSpecials("<|start|>assistant<|channel|>final<|message|>")
	if w := []int{200006, 173781, 200005, 17196, 200008}; !slices.Equal(got, w) {
		t.Errorf("header = %v, want %v", got, w)
	}
	if got := tok.Encode("analysis"); !slices.Equal(got, []int{35644}) {
		t.Errorf("analysis = %v", got)
	}
}

func TestGoldenVectors(t *testing.T) {
	tok := defaultTok(t)
	sawSpecial := false
	for i, v := range loadVectors(t) {
		if hasSpecialText(v.Text) {
			sawSpecial = true
			if got := tok.EncodeWithSpecials(v.Text); !slices.Equal(got, v.IDs) {
				t.Errorf("#%d EncodeWithSpecials(%q) = %v, want %v", i, v.Text, got, v.IDs)
			}
			// Request content: the same text must stay plain text.
			plain := tok.Encode(v.Text)
			for _, id := range plain {
				if id >= NumRanks {
					t.Errorf("#%d Encode(%q) produced special id %d: %v", i, v.Text, id, plain)
				}
			}
			if d := tok.Decode(plain); d != v.Text {
				t.Errorf("#%d Decode(Encode) = %q", i, d)
			}
			if slices.Equal(plain, v.IDs) {
				t.Errorf("#%d Encode did not differ from special encoding", i)
			}
			continue
		}
		if got := tok.Encode(v.Text); !slices.Equal(got, v.IDs) {
			t.Errorf("#%d Encode(%q) = %v, want %v", i, v.Text, got, v.IDs)
		}
		// No specials in the text: both encoders agree.
		if got := tok.EncodeWithSpecials(v.Text); !slices.Equal(got, v.IDs) {
			t.Errorf("#%d EncodeWithSpecials(%q) = %v, want %v", i, v.Text, got, v.IDs)
		}
		if d := tok.Decode(v.IDs); d != v.Text {
			t.Errorf("#%d Decode = %q, want %q", i, d, v.Text)
		}
	}
	if !sawSpecial {
		t.Error("no vector with special-token text")
	}
}

func TestPlainTextSpecialInjection(t *testing.T) {
	tok := defaultTok(t)
	// "<|start|>user<|message|>hi" as request content: plain pieces.
	got := tok.Encode("<|start|>user<|message|>hi")
	if slices.Contains(got, Start) || slices.Contains(got, Message) {
		t.Fatalf("Encode produced specials: %v", got)
	}
	want := []int{}
	for _, p := range []string{"<|", "start", "|>", "user", "<|", "message", "|>", "hi"} {
		want = append(want, tok.Encode(p)...)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
}

func TestEncodeWithSpecialsScanning(t *testing.T) {
	tok := defaultTok(t)
	cases := []struct {
		in   string
		want []string // "" entries stand for specials given in ids
	}{
		{"<|end|>", []string{"<|end|>"}},
		{"a<|end|>b", []string{"a", "<|end|>", "b"}},
		{"<|<|end|>", []string{"<|", "<|end|>"}},
		{"<|end|><|start|>", []string{"<|end|>", "<|start|>"}},
		{"<|nope|> <|end|", []string{"<|nope|> <|end|"}},
		{"<|>|end|>", []string{"<|>|end|>"}},
		{"<|reserved_200013|>x", []string{"<|reserved_200013|>", "x"}},
		{"<|reserved_201088|>", []string{"<|reserved_201088|>"}},
		{strings.Repeat("<|", 1000) + "end|>", []string{strings.Repeat("<|", 999), "<|end|>"}},
	}
	for _, c := range cases {
		var want []int
		for _, p := range c.want {
			if id, ok := tok.SpecialID(p); ok {
				want = append(want, id)
			} else {
				want = append(want, tok.Encode(p)...)
			}
		}
		if got := tok.EncodeWithSpecials(c.in); !slices.Equal(got, want) {
			t.Errorf("EncodeWithSpecials(%.40q) = %v, want %v", c.in, got, want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	tok := defaultTok(t)
	for i, v := range loadVectors(t) {
		if d := tok.Decode(tok.Encode(v.Text)); d != v.Text {
			t.Errorf("#%d round trip %q -> %q", i, v.Text, d)
		}
		if d := tok.Decode(tok.EncodeWithSpecials(v.Text)); d != v.Text {
			t.Errorf("#%d special round trip %q -> %q", i, v.Text, d)
		}
	}
}

func TestEncodeInvalidUTF8(t *testing.T) {
	tok := defaultTok(t)
	for _, s := range []string{"\xff", "a\xc3", "\xe2\x82", "ab\x80cd", "\xed\xa0\x80", "x \xff\xfe y"} {
		ids := tok.Encode(s)
		if got := string(tok.DecodeBytes(ids)); got != s {
			t.Errorf("DecodeBytes(Encode(%q)) = %q", s, got)
		}
		if d := tok.Decode(ids); !utf8.ValidString(d) {
			t.Errorf("Decode(Encode(%q)) = %q is invalid UTF-8", s, d)
		}
	}
}

func TestConcurrentEncode(t *testing.T) {
	tok := defaultTok(t)
	vs := loadVectors(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < len(vs); i += 8 {
				if hasSpecialText(vs[i].Text) {
					continue
				}
				if got := tok.Encode(vs[i].Text); !slices.Equal(got, vs[i].IDs) {
					t.Errorf("#%d mismatch under concurrency", i)
				}
			}
		})
	}
	wg.Wait()
}

// writeHFTokenizer writes a tokenizer.json equivalent to tok in the layout HF
// uses for gpt-oss: byte-to-unicode vocab, merges in the "a b" form derived
// from ranks as transformers' tiktoken converter does, and added tokens for
// the named specials (HF defines only 199998..200018).
func writeHFTokenizer(tb testing.TB, tok *Tokenizer, dir string) {
	tb.Helper()
	b2u := gpt2ByteToUnicode()
	enc := func(s string) string {
		var sb strings.Builder
		for i := 0; i < len(s); i++ {
			sb.WriteRune(b2u[s[i]])
		}
		return sb.String()
	}
	vocab := make(map[string]int, NumRanks)
	type merge struct {
		l, r string
		rank int
	}
	var merges []merge
	for id := range NumRanks {
		s, _ := tok.TokenString(id)
		vocab[enc(s)] = id
		for k := 1; k < len(s); k++ {
			if _, ok := tok.Lookup(s[:k]); !ok {
				continue
			}
			if _, ok := tok.Lookup(s[k:]); ok {
				merges = append(merges, merge{s[:k], s[k:], id})
			}
		}
	}
	slices.SortStableFunc(merges, func(a, b merge) int { return a.rank - b.rank })
	ms := make([]string, len(merges))
	for i, m := range merges {
		ms[i] = enc(m.l) + " " + enc(m.r)
	}
	type added struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	}
	var adds []added
	for id := NumRanks; id <= EndOfPrompt; id++ {
		s, _ := tok.TokenString(id)
		adds = append(adds, added{id, s, true})
	}
	doc := map[string]any{
		"version":      "1.0",
		"added_tokens": adds,
		"model": map[string]any{
			"type": "BPE", "ignore_merges": true, "vocab": vocab, "merges": ms,
		},
	}
	data, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
		tb.Fatal(err)
	}
}

func TestLoadHFTokenizerJSON(t *testing.T) {
	tok := defaultTok(t)
	dir := t.TempDir()
	writeHFTokenizer(t, tok, dir)
	start := time.Now()
	hf, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Load(tokenizer.json) took %v", time.Since(start))
	if hf.NumTokens() != NumVocab {
		t.Errorf("NumTokens %d, want %d", hf.NumTokens(), NumVocab)
	}
	for i, v := range loadVectors(t) {
		if got := hf.EncodeWithSpecials(v.Text); !slices.Equal(got, v.IDs) {
			t.Errorf("#%d hf EncodeWithSpecials(%q) = %v, want %v", i, v.Text, got, v.IDs)
		}
		if got, want := hf.Encode(v.Text), tok.Encode(v.Text); !slices.Equal(got, want) {
			t.Errorf("#%d hf Encode(%q) = %v, want %v", i, v.Text, got, want)
		}
	}
	for id := range NumVocab {
		a, _ := tok.TokenString(id)
		b, _ := hf.TokenString(id)
		if a != b || tok.IsSpecial(id) != hf.IsSpecial(id) {
			t.Fatalf("id %d: embedded %q (special %v), tokenizer.json %q (special %v)",
				id, a, tok.IsSpecial(id), b, hf.IsSpecial(id))
		}
	}
}

func TestLoadFallsBackToEmbedded(t *testing.T) {
	tok, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("analysis"); !slices.Equal(got, []int{35644}) {
		t.Errorf("analysis = %v", got)
	}
}

func TestParseHFTokenizerErrors(t *testing.T) {
	full := `{"model":{"type":"BPE","vocab":{` // all 256 single bytes
	b2u := gpt2ByteToUnicode()
	for b := range 256 {
		k, _ := json.Marshal(string(b2u[b]))
		full += string(k) + ":" + itoa(b) + ","
	}
	cases := map[string]string{
		"not json":       `{`,
		"wrong type":     `{"model":{"type":"WordPiece","vocab":{"a":0}}}`,
		"empty vocab":    `{"model":{"type":"BPE","vocab":{}}}`,
		"missing bytes":  `{"model":{"type":"BPE","vocab":{"a":0}}}`,
		"non byte char":  full + `"\u4e2d":256}}}`,
		"duplicate id":   full + `"ab":256,"ac":256}}}`,
		"negative id":    full + `"ab":-1}}}`,
		"huge id":        full + `"ab":99999999999}}}`,
		"bad special":    full + `"ab":256}},"added_tokens":[{"id":300,"content":"<s>","special":true}]}`,
		"special clash":  full + `"ab":256}},"added_tokens":[{"id":300,"content":"<|a|>"},{"id":300,"content":"<|b|>"}]}`,
		"empty entry":    full + `"":256}}}`,
		"special=vocabs": full + `"ab":256}},"added_tokens":[{"id":301,"content":"<|a|>"},{"id":302,"content":"<|a|>"}]}`,
	}
	for name, doc := range cases {
		if _, err := ParseHFTokenizer([]byte(doc)); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// The minimal valid document loads.
	tok, err := ParseHFTokenizer([]byte(full + `"ab":256}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("ab"); !slices.Equal(got, []int{256}) {
		t.Errorf("Encode(ab) = %v", got)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
