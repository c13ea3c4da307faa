package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func pieces(s string) []string {
	var out []string
	for p := 0; p < len(s); {
		e := nextPiece(s, p)
		if e <= p || e > len(s) {
			panic("nextPiece made no progress")
		}
		out = append(out, s[p:e])
		p = e
	}
	return out
}

// Expectations produced by the o200k regex in Python's backtracking `regex`
// module (testdata/gen-pretok-cases.py shows the pattern).
func TestPretokenizerCases(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{" x", []string{" x"}},
		{"  x", []string{" ", " x"}},
		{"   x", []string{"  ", " x"}},
		{"x  ", []string{"x", "  "}},
		{"trailing spaces   ", []string{"trailing", " spaces", "   "}},
		{"   ", []string{"   "}},
		{"\r\n", []string{"\r\n"}},
		{"a\r\nb", []string{"a", "\r\n", "b"}},
		{"a\r\n\r\nb", []string{"a", "\r\n\r\n", "b"}},
		{" \r\n x", []string{" \r\n", " x"}},
		{"\t\tx", []string{"\t", "\tx"}},
		{"x\ty", []string{"x", "\ty"}},
		{"\t", []string{"\t"}},
		{"a \t b", []string{"a", " \t", " b"}},
		{"  \n\n  x", []string{"  \n\n", " ", " x"}},
		{"\n x", []string{"\n", " x"}},
		{"hello world", []string{"hello", " world"}},
		{"I'm", []string{"I'm"}},
		{"can't", []string{"can't"}},
		{"we'll", []string{"we'll"}},
		{"they've", []string{"they've"}},
		{"HE'S", []string{"HE'S"}},
		{"THEY'LL", []string{"THEY'LL"}},
		{"I'D", []string{"I'D"}},
		{"you're", []string{"you're"}},
		{"YOU'RE", []string{"YOU'RE"}},
		{"it'\u017f", []string{"it'\u017f"}},
		{"x'Ll", []string{"x'Ll"}},
		{"'s", []string{"'s"}},
		{"a's's", []string{"a's", "'s"}},
		{"O'Neil", []string{"O", "'Neil"}},
		{"don\u2019t", []string{"don", "\u2019t"}},
		{"1", []string{"1"}},
		{"12", []string{"12"}},
		{"123", []string{"123"}},
		{"1234", []string{"123", "4"}},
		{"1234567", []string{"123", "456", "7"}},
		{"x1234", []string{"x", "123", "4"}},
		{" 12", []string{" ", "12"}},
		{"3.14159", []string{"3", ".", "141", "59"}},
		{"1,000,000", []string{"1", ",", "000", ",", "000"}},
		{"\u0663\u0663\u0663\u0663", []string{"\u0663\u0663\u0663", "\u0663"}},
		{"!\n", []string{"!\n"}},
		{"?!\n\n", []string{"?!\n\n"}},
		{"}\n", []string{"}\n"}},
		{"a.\n", []string{"a", ".\n"}},
		{"...\r\n", []string{"...\r\n"}},
		{"http://a/b", []string{"http", "://", "a", "/b"}},
		{"//\n/", []string{"//\n/"}},
		{" !!", []string{" !!"}},
		{"  !!", []string{" ", " !!"}},
		{"a, b", []string{"a", ",", " b"}},
		{"foo()\n", []string{"foo", "()\n"}},
		{"x = 1;\n\n", []string{"x", " =", " ", "1", ";\n\n"}},
		{"CamelCase", []string{"Camel", "Case"}},
		{"HTMLParser", []string{"HTMLParser"}},
		{"\u01c5ungla", []string{"\u01c5ungla"}},
		{"\u00e9\u0301", []string{"\u00e9\u0301"}},
		{"e\u0301\u0301x", []string{"e\u0301\u0301x"}},
		{" \u0301", []string{" \u0301"}},
		{"\u0301", []string{"\u0301"}},
		{"\u0301a", []string{"\u0301a"}},
		{"a\u0301B", []string{"a\u0301", "B"}},
		{"\u4e2d\u6587", []string{"\u4e2d\u6587"}},
		{"\u4e2dA", []string{"\u4e2d", "A"}},
		{"\u02b0a", []string{"\u02b0a"}},
		{"\u00a0x", []string{"\u00a0x"}},
		{"\u00a0\u00a0x", []string{"\u00a0", "\u00a0x"}},
		{"x\u3000y", []string{"x", "\u3000y"}},
		{"a\u2028b", []string{"a", "\u2028b"}},
		{"\U0001f642\U0001f642", []string{"\U0001f642\U0001f642"}},
		{" \U0001f642", []string{" \U0001f642"}},
		{"x\U0001f642\n", []string{"x", "\U0001f642\n"}},
	}
	for _, c := range cases {
		if got := pieces(c.in); !slices.Equal(got, c.want) {
			t.Errorf("pieces(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestPretokenizerRegexCases(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "pretok-regex-cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Text   string   `json:"text"`
		Pieces []string `json:"pieces"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 1000 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		if got := pieces(c.Text); !slices.Equal(got, c.Pieces) {
			t.Errorf("pieces(%q) = %q, want %q", c.Text, got, c.Pieces)
		}
	}
}

// The table must agree with the unicode package predicates.
func TestClassTable(t *testing.T) {
	for r := rune(0); r < tableRunes; r++ {
		if got, want := classTable[r], classOf(r); got != want {
			t.Fatalf("%U: table %07b, classOf %07b", r, got, want)
		}
	}
}

func TestPretokenizerInvalidUTF8(t *testing.T) {
	// Invalid bytes act as U+FFFD (a symbol); the split must still cover s.
	cases := map[string][]string{
		"\xff":      {"\xff"},
		"a\xffb":    {"a", "\xffb"},
		" \xff":     {" \xff"},
		"x\xe2\x82": {"x", "\xe2\x82"},
		"ab\xc3":    {"ab", "\xc3"},
	}
	for in, want := range cases {
		if got := pieces(in); !slices.Equal(got, want) {
			t.Errorf("pieces(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkBuildClassTable(b *testing.B) {
	for b.Loop() {
		buildClassTable()
	}
}
