package server

import (
	"encoding/json"
	"testing"
)

func TestJSONPrefix(t *testing.T) {
	valid := []string{`{}`, `{"a":1}`, ` { "a" : [1, -2.5e+3, true, false, null, "x\"\u00e9\n"], "b": {"c": {}} } `, `{"n":0}`, `{"n":-0.5}`}
	for _, s := range valid {
		var j jsonPrefix
		if !j.feed([]byte(s)) || !j.done() {
			t.Errorf("%q: rejected or not done", s)
		}
		if !json.Valid([]byte(s)) {
			t.Fatalf("test case %q is not JSON", s)
		}
	}
	prefixes := []string{``, ` `, `{`, `{"a`, `{"a":`, `{"a":1`, `{"a":[1,`, `{"a":"\`, `{"a":"\u00`, `{"a":tr`, `{"a":-`, `{"a":1e`}
	for _, s := range prefixes {
		var j jsonPrefix
		if !j.feed([]byte(s)) || j.done() {
			t.Errorf("%q: should be an open prefix", s)
		}
	}
	invalid := []string{`[`, `"x"`, `{a`, `{"a" 1}`, `{"a":01}`, `{"a":1.}`, `{"a":tx}`, `{"a":1,}`, `{"a":[1}`, `{}x`, `{"a":"` + "\n", `{"a":-}`, `{"a":"\x"}`, "{\n}", "{\t\"a\":1}"}
	for _, s := range invalid {
		var j jsonPrefix
		if j.feed([]byte(s)) && j.done() {
			t.Errorf("%q: accepted", s)
		}
		if j.feed([]byte(s)) && s == `{"a":1.}` {
			t.Errorf("%q: accepted as a prefix", s)
		}
	}
}

func TestStopMatcher(t *testing.T) {
	m := stopMatcher{stops: []string{"END", "xy"}}
	var out string
	for i, piece := range []string{"ab", "cE", "N", "D", "zz"} {
		o, stopped := m.push(piece)
		out += o
		if i == 1 && out != "abc" {
			t.Fatalf("after %q emitted %q: a possible stop start must be held back", piece, out)
		}
		if stopped {
			if out != "abc" {
				t.Fatalf("emitted %q before the stop, want abc", out)
			}
			return
		}
	}
	t.Fatalf("stop string not found; emitted %q", out)
}

// Forcing the closer from any open prefix ends in a complete object.
func TestJSONPrefixCloser(t *testing.T) {
	for _, s := range []string{``, `{`, `{"a`, `{"a":`, `{"a":1`, `{"a":[1,`, `{"a":"\`, `{"a":"\u00`, `{"a":tr`, `{"a":-`, `{"a":1e`, `{"a":{"b":[`, `{"a":1,`} {
		var j jsonPrefix
		j.feed([]byte(s))
		out := s
		for n := 0; !j.done(); n++ {
			c := j.closer()
			if n > 100 || !j.byte(c) {
				t.Fatalf("%q: closing stuck at %q", s, out)
			}
			out += string(c)
		}
		if !json.Valid([]byte(out)) {
			t.Fatalf("%q closed as %q, not JSON", s, out)
		}
	}
}
