package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "hello world", "  x\r\n\t ", "I'M", "<|start|>x<|end|>", "中文🙂", "\xff\xe2\x82", "1234567"} {
		f.Add(s)
	}
	tok, err := Default()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s)
		if got := string(tok.DecodeBytes(ids)); got != s {
			t.Fatalf("DecodeBytes(Encode(%q)) = %q", s, got)
		}
		if utf8.ValidString(s) {
			if got := tok.Decode(ids); got != s {
				t.Fatalf("Decode(Encode(%q)) = %q", s, got)
			}
		}
		for _, id := range ids {
			if id < 0 || id >= NumRanks {
				t.Fatalf("Encode(%q) produced id %d", s, id)
			}
		}
		// Specials decode to their text, so the bytes survive here too.
		if got := string(tok.DecodeBytes(tok.EncodeWithSpecials(s))); got != s {
			t.Fatalf("DecodeBytes(EncodeWithSpecials(%q)) = %q", s, got)
		}
		if got := strings.Join(pieces(s), ""); got != s {
			t.Fatalf("pieces(%q) join to %q", s, got)
		}
	})
}

// benchText builds a few hundred KB of text.
func benchText(b *testing.B, kind string) string {
	var sb strings.Builder
	switch kind {
	case "mixed": // the golden vectors: edge cases, CJK, emoji, random mixes
		for sb.Len() < 400<<10 {
			for _, v := range loadVectors(b) {
				sb.WriteString(v.Text)
				sb.WriteByte('\n')
			}
		}
	case "code": // this package's Go sources: code, comments, English prose
		files, err := filepath.Glob("*.go")
		if err != nil || len(files) == 0 {
			b.Fatal("no sources", err)
		}
		for sb.Len() < 400<<10 {
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					b.Fatal(err)
				}
				sb.Write(data)
			}
		}
	}
	return sb.String()
}

// go test -run '^$' -bench Encode -cpu 1 ./tokenizer
func BenchmarkEncode(b *testing.B) {
	tok := defaultTok(b)
	for _, kind := range []string{"mixed", "code"} {
		b.Run(kind, func(b *testing.B) {
			text := benchText(b, kind)
			dst := make([]int, 0, len(text))
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				dst = tok.AppendEncode(dst[:0], text)
			}
			b.ReportMetric(float64(len(text))/float64(len(dst)), "bytes/token")
		})
	}
}

func BenchmarkDefault(b *testing.B) {
	for b.Loop() {
		if _, err := Default(); err != nil {
			b.Fatal(err)
		}
	}
}
