package cuda

import (
	"bytes"
	"strings"
	"testing"
)

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

// TestOpenDevice: cpu opens nothing; auto opens GPU 0 when there is one
// and otherwise says why in one line; an explicit cuda without a GPU is an
// error naming the flag; a bad value is refused.
func TestOpenDevice(t *testing.T) {
	_, gpuErr := Devices()
	var log bytes.Buffer
	if g, err := OpenDevice("cpu", &log); g != nil || err != nil || log.Len() != 0 {
		t.Errorf("cpu: %v, %v, log %q", g, err, log.String())
	}
	g, err := OpenDevice("auto", &log)
	if err != nil {
		t.Fatal(err)
	}
	if gpuErr != nil {
		if g != nil || strings.Count(log.String(), "\n") != 1 || !strings.Contains(log.String(), "using the CPU") {
			t.Errorf("auto without a GPU: %v, log %q", g, log.String())
		}
		if _, err := OpenDevice("cuda", &log); err == nil || !strings.Contains(err.Error(), "--device cuda") {
			t.Errorf("--device cuda without a GPU: %v", err)
		}
	} else {
		if g == nil || log.Len() != 0 {
			t.Errorf("auto with a GPU: %v, log %q", g, log.String())
		}
		if g != nil {
			g.Close()
		}
	}
	if _, err := OpenDevice("gpu", &log); err == nil {
		t.Error("--device gpu accepted")
	}
}
