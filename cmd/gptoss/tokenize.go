package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/gptoss/gptoss/tokenizer"
)

func cmdTokenize(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return tokenizeMain(args, os.Stdin, stdout, stderr)
}

// tokenizeMain is cmdTokenize with stdin passed in, so tests need not touch
// os.Stdin.
func tokenizeMain(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("tokenize", stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: gptoss tokenize [--model DIR] [--decode] [--text STRING]

Encodes text as ordinary text (text that looks like "<|start|>" stays text,
as request content does in the server), or decodes ids with --decode.

  stdin: ["text", ...]          stdout: [[id, ...], ...]
  --text STRING                 stdout: [id, ...]
  --decode, stdin: [[id, ...]]  stdout: ["text", ...]
  --decode --text 1,2,3         stdout: "text"

`)
		fs.PrintDefaults()
	}
	modelDir := fs.String("model", "", "use this checkpoint directory's tokenizer.json (default: the embedded o200k_harmony)")
	decode := fs.Bool("decode", false, "decode token ids to text instead of encoding")
	text := fs.String("text", "", "one input given on the command line instead of stdin (with --decode: comma-separated ids or a JSON array)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (pass text with --text or on stdin)", fs.Arg(0))
	}
	textSet := fs.Changed("text")

	var tok *tokenizer.Tokenizer
	var err error
	if *modelDir != "" {
		tok, err = tokenizer.Load(*modelDir)
	} else {
		tok, err = tokenizer.Default()
	}
	if err != nil {
		return fmt.Errorf("loading the tokenizer: %w", err)
	}

	var out any
	switch {
	case !*decode && textSet:
		out = nonNil(tok.Encode(*text))
	case !*decode:
		var texts []string
		if err := readJSON(stdin, &texts, `a JSON array of strings, e.g. ["Hello world"]`); err != nil {
			return err
		}
		ids := make([][]int, len(texts))
		for i, s := range texts {
			ids[i] = nonNil(tok.Encode(s))
		}
		out = ids
	case textSet:
		ids, err := parseIDList(*text)
		if err != nil {
			return fmt.Errorf("--text: %w", err)
		}
		if err := checkIDs(tok, ids, "--text"); err != nil {
			return err
		}
		out = tok.Decode(ids)
	default:
		var lists [][]int
		if err := readJSON(stdin, &lists, "a JSON array of id arrays, e.g. [[13225, 2375]]"); err != nil {
			return err
		}
		texts := make([]string, len(lists))
		for i, ids := range lists {
			if err := checkIDs(tok, ids, fmt.Sprintf("input[%d]", i)); err != nil {
				return err
			}
			texts[i] = tok.Decode(ids)
		}
		out = texts
	}
	// No HTML escaping: decoded "<|start|>" should read as itself.
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("writing the output: %w", err)
	}
	return nil
}

// nonNil makes an empty encoding print as [] rather than null.
func nonNil(ids []int) []int {
	if ids == nil {
		return []int{}
	}
	return ids
}

// readJSON decodes exactly one JSON value from r; want describes the
// expected shape for the error message.
func readJSON(r io.Reader, v any, want string) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("stdin is empty: want %s (or use --text)", want)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("stdin: want %s: %w", want, err)
	}
	if dec.More() {
		return fmt.Errorf("stdin: want %s: extra data after the first JSON value", want)
	}
	return nil
}

// parseIDList accepts "1,2,3", "1 2 3" or a JSON array "[1,2,3]".
func parseIDList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var ids []int
		if err := json.Unmarshal([]byte(s), &ids); err != nil {
			return nil, fmt.Errorf("not a JSON array of ids: %w", err)
		}
		return ids, nil
	}
	ids := []int{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a token id", f)
		}
		ids = append(ids, v)
	}
	return ids, nil
}

// checkIDs rejects ids outside the vocabulary rather than decoding them to
// U+FFFD, which would hide the mistake.
func checkIDs(tok *tokenizer.Tokenizer, ids []int, where string) error {
	n := tok.NumTokens()
	for i, id := range ids {
		if id < 0 || id >= n {
			return fmt.Errorf("%s[%d]: token id %d is outside the vocabulary [0, %d)", where, i, id, n)
		}
	}
	return nil
}
