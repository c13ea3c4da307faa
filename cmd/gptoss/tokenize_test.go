package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/gptoss/gptoss/harmony"
)

func tokenizeRun(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := tokenizeMain(args, strings.NewReader(stdin), &stdout, &stderr)
	return stdout.String(), err
}

// TestTokenizeGoldenVectors encodes the tokenizer's golden vectors through
// the command, with the embedded table and through --model (a checkpoint
// directory without tokenizer.json falls back to the embedded one), and
// decodes them back.
func TestTokenizeGoldenVectors(t *testing.T) {
	b, err := os.ReadFile("../../testdata/tokenizer/o200k_harmony-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vecs []struct {
		Text string `json:"text"`
		IDs  []int  `json:"ids"`
	}
	if err := json.Unmarshal(b, &vecs); err != nil {
		t.Fatal(err)
	}
	// The one vector holding special-token text expects the specials; the
	// command encodes ordinary text (see TestTokenizeText), so leave it out.
	kept := vecs[:0]
	for _, v := range vecs {
		if !strings.Contains(v.Text, "<|") {
			kept = append(kept, v)
		}
	}
	vecs = kept
	texts := make([]string, len(vecs))
	for i, v := range vecs {
		texts[i] = v.Text
	}
	in, _ := json.Marshal(texts)
	for _, args := range [][]string{nil, {"--model", "../../testdata/tiny"}} {
		out, err := tokenizeRun(t, string(in), args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var got [][]int
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v: output %q: %v", args, out, err)
		}
		if len(got) != len(vecs) {
			t.Fatalf("%v: %d outputs for %d inputs", args, len(got), len(vecs))
		}
		for i, v := range vecs {
			if !equalInts(got[i], v.IDs) {
				t.Errorf("%v: %q: got %v, want %v", args, v.Text, got[i], v.IDs)
			}
		}

		ids, _ := json.Marshal(got)
		out, err = tokenizeRun(t, string(ids), append([]string{"--decode"}, args...)...)
		if err != nil {
			t.Fatalf("%v --decode: %v", args, err)
		}
		var back []string
		if err := json.Unmarshal([]byte(out), &back); err != nil {
			t.Fatalf("--decode output %q: %v", out, err)
		}
		for i, v := range vecs {
			if i < len(back) && back[i] != v.Text {
				t.Errorf("--decode: got %q, want %q", back[i], v.Text)
			}
		}
	}
}

func TestTokenizeText(t *testing.T) {
	out, err := tokenizeRun(t, "", "--text", "Hello, world!")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "[13225,11,2375,0]" {
		t.Errorf("--text: got %s", out)
	}
	// Ordinary-text encoding: a special token's text stays text.
	out, err = tokenizeRun(t, "", "--text", "<|start|>user")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	if err := json.Unmarshal([]byte(out), &ids); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if id == harmony.TokenStart {
			t.Errorf("<|start|> in text was encoded as the special token: %v", ids)
		}
	}
	if len(ids) < 2 {
		t.Errorf("<|start|>user: %v", ids)
	}
	if out, err := tokenizeRun(t, "", "--text", ""); err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("empty --text: %q, %v", out, err)
	}

	for _, list := range []string{"13225,11,2375,0", "13225, 11, 2375, 0", "[13225,11,2375,0]"} {
		out, err = tokenizeRun(t, "", "--decode", "--text", list)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) != `"Hello, world!"` {
			t.Errorf("--decode --text %s: got %s", list, out)
		}
	}
	// Specials decode to their text, unescaped.
	out, err = tokenizeRun(t, "", "--decode", "--text", "200006,1428,200008")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != `"<|start|>user<|message|>"` {
		t.Errorf("specials: got %s", out)
	}
}

func TestTokenizeErrors(t *testing.T) {
	cases := []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"empty stdin", "", nil, "stdin is empty"},
		{"not an array", `"hello"`, nil, "JSON array of strings"},
		{"numbers", `[1, 2]`, nil, "JSON array of strings"},
		{"trailing", `["a"] ["b"]`, nil, "extra data"},
		{"decode strings", `["a"]`, []string{"--decode"}, "JSON array of id arrays"},
		{"decode out of range", `[[1, 999999999]]`, []string{"--decode"}, "input[0][1]: token id 999999999 is outside the vocabulary"},
		{"decode negative", "", []string{"--decode", "--text", "5,-1"}, "--text[1]: token id -1"},
		{"decode junk", "", []string{"--decode", "--text", "1,x"}, `"x" is not a token id`},
		{"stray argument", "", []string{"hello"}, "unexpected argument"},
		{"missing model", "", []string{"--model", "/nonexistent/dir", "--text", "a"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := tokenizeRun(t, c.stdin, c.args...)
			if c.name == "missing model" {
				// tokenizer.Load falls back to the embedded table when a
				// directory has no tokenizer.json; either way no panic.
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
