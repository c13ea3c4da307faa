package serve

import (
	"testing"

	"github.com/gptoss/gptoss/tokenizer"
)

func TestPrompts(t *testing.T) {
	tok, err := tokenizer.Default()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tok.Encode(InteractivePrompt)); n < 100 || n > 110 {
		t.Errorf("interactive prompt has %d tokens, want ≈105", n)
	}
	sc := ScenarioPrompts(tok)
	perCategory := map[string]int{}
	for _, p := range sc {
		perCategory[p.Category]++
		if p.Tokens < 5 {
			t.Errorf("%s prompt %q: %d tokens", p.Category, p.Text, p.Tokens)
		}
	}
	if len(sc) != 25 || len(perCategory) != 5 {
		t.Errorf("%d scenario prompts in %d categories, want 25 in 5", len(sc), len(perCategory))
	}
	for _, c := range scenarioCategories() {
		if perCategory[c] != 5 {
			t.Errorf("category %s has %d prompts", c, perCategory[c])
		}
	}
	for _, n := range []int{1, 3, 105, 2000} {
		ps, err := RandomPrompts(tok, 4, n, uint64(n))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, p := range ps {
			if got := len(tok.Encode(p.Text)); got != n || p.Tokens != n {
				t.Errorf("random prompt of %d tokens re-encodes to %d (says %d)", n, got, p.Tokens)
			}
			seen[p.Text] = true
		}
		if len(seen) != len(ps) {
			t.Errorf("length %d: %d distinct prompts of %d", n, len(seen), len(ps))
		}
	}
	a, _ := RandomPrompts(tok, 2, 50, 9)
	b, _ := RandomPrompts(tok, 2, 50, 9)
	if a[0] != b[0] || a[1] != b[1] {
		t.Error("same seed, different prompts")
	}
	if _, err := RandomPrompts(tok, 1, 0, 1); err == nil {
		t.Error("zero length: no error")
	}
}
