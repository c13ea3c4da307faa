package cuda

import "testing"

func TestParseDevice(t *testing.T) {
	for _, c := range []struct {
		in   string
		kind string
		n    int
		ok   bool
	}{
		{"auto", "auto", 0, true}, {"", "auto", 0, true}, {"cpu", "cpu", 0, true},
		{"cuda", "cuda", 0, true}, {"cuda:3", "cuda", 3, true},
		{"cuda:-1", "", 0, false}, {"cuda:x", "", 0, false}, {"gpu", "", 0, false}, {"cuda:", "", 0, false},
	} {
		k, n, err := ParseDevice(c.in)
		if (err == nil) != c.ok || k != c.kind || n != c.n {
			t.Errorf("ParseDevice(%q) = %q, %d, %v", c.in, k, n, err)
		}
	}
}
