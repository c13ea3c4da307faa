package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

func cmdLogits(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("logits", stderr)
	var mf modelFlags
	mf.register(fs)
	mf.registerCPU(fs)
	tokens := fs.String("tokens", "", "comma-separated input token ids, e.g. 1,2,3")
	mode := fs.String("mode", "prefill", "prefill (one pass), decode (one token at a time through the KV cache) or chunk=N")
	out := fs.String("out", "", "output file: raw little-endian float32 [tokens, vocab]; - for stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out FILE is required")
	}
	ids, err := parseTokens(*tokens)
	if err != nil {
		return err
	}
	chunk, err := parseMode(*mode, len(ids))
	if err != nil {
		return err
	}
	m, ck, err := mf.load()
	if err != nil {
		return err
	}
	defer ck.Close()
	logits, err := m.Logits(ctx, ids, chunk, nil)
	if err != nil {
		return err
	}
	w := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var b [4]byte
	for _, v := range logits {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		bw.Write(b[:])
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", *out, err)
	}
	if *out != "-" {
		fmt.Fprintf(stdout, "wrote %s: float32 [%d, %d] (%s)\n", *out, len(ids), m.Config.VocabSize, *mode)
	}
	return nil
}

func parseTokens(s string) ([]int32, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("--tokens is required, e.g. --tokens 1,2,3")
	}
	var ids []int32
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("--tokens: %q is not a token id", f)
		}
		ids = append(ids, int32(v))
	}
	return ids, nil
}

// parseMode turns --mode into a chunk size for n tokens.
func parseMode(mode string, n int) (int, error) {
	switch {
	case mode == "prefill":
		return n, nil
	case mode == "decode":
		return 1, nil
	case strings.HasPrefix(mode, "chunk="):
		c, err := strconv.Atoi(strings.TrimPrefix(mode, "chunk="))
		if err != nil || c <= 0 {
			return 0, fmt.Errorf("--mode %q: chunk size must be a positive integer", mode)
		}
		return c, nil
	}
	return 0, fmt.Errorf("--mode %q: want prefill, decode or chunk=N", mode)
}
