package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Load returns the tokenizer of a model directory: its Hugging Face
// tokenizer.json when present, else the embedded o200k_harmony (Default).
// Both give identical results for gpt-oss.
func Load(modelDir string) (*Tokenizer, error) {
	path := filepath.Join(modelDir, "tokenizer.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default()
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := ParseHFTokenizer(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

// hfTokenizer is the subset of tokenizer.json that we read.
type hfTokenizer struct {
	Model struct {
		Type  string         `json:"type"`
		Vocab map[string]int `json:"vocab"`
		// Merges are not read: see ParseHFTokenizer.
	} `json:"model"`
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
}

// ParseHFTokenizer builds a Tokenizer from the contents of a Hugging Face
// tokenizer.json holding a byte-level BPE model. Vocab keys are GPT-2
// byte-to-unicode strings; each is mapped back to bytes and its id used as its
// rank.
//
// The merges list is ignored: merge priority is derived from ranks as
// tiktoken does (merge the adjacent pair whose concatenation has the lowest
// rank). That is exact for vocabularies converted from tiktoken ranks, which
// gpt-oss's is (HF orders merges by the merged token's rank and looks whole
// pieces up first, "ignore_merges").
//
// Every added token becomes a special token, recognised only by
// EncodeWithSpecials; ids past the vocab and below NumVocab that no added token
// defines get <|reserved_ID|> names, as in the embedded table.
func ParseHFTokenizer(data []byte) (*Tokenizer, error) {
	var hf hfTokenizer
	if err := json.Unmarshal(data, &hf); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	if hf.Model.Type != "BPE" {
		return nil, fmt.Errorf("model type %q, want BPE", hf.Model.Type)
	}
	if len(hf.Model.Vocab) == 0 {
		return nil, errors.New("model.vocab is empty")
	}
	// Bound ids so a corrupt file cannot make us allocate without limit.
	const maxID = 1 << 24
	specials := make(map[int]string, len(hf.AddedTokens))
	for _, at := range hf.AddedTokens {
		if at.ID < 0 || at.ID >= maxID {
			return nil, fmt.Errorf("added token %q: id %d out of range", at.Content, at.ID)
		}
		if prev, dup := specials[at.ID]; dup && prev != at.Content {
			return nil, fmt.Errorf("added tokens %q and %q share id %d", prev, at.Content, at.ID)
		}
		specials[at.ID] = at.Content
	}
	unicodeToByte := gpt2UnicodeToByte()
	nOrd := 0
	for _, id := range hf.Model.Vocab {
		if id < 0 || id >= maxID {
			return nil, fmt.Errorf("vocab id %d out of range", id)
		}
		if _, sp := specials[id]; !sp {
			nOrd = max(nOrd, id+1)
		}
	}
	toks := make([]string, nOrd)
	var sb strings.Builder
	for key, id := range hf.Model.Vocab {
		if _, sp := specials[id]; sp {
			continue // a copy of an added token: handled as special
		}
		if toks[id] != "" {
			return nil, fmt.Errorf("vocab id %d used by two entries", id)
		}
		sb.Reset()
		for _, r := range key {
			b, ok := unicodeToByte[r]
			if !ok {
				return nil, fmt.Errorf("vocab entry %q (id %d): %U is not a byte-level character", key, id, r)
			}
			sb.WriteByte(b)
		}
		if sb.Len() == 0 {
			return nil, fmt.Errorf("vocab entry id %d is empty", id)
		}
		toks[id] = sb.String()
	}
	nVocab := max(NumVocab, nOrd)
	for id := nOrd; id < nVocab; id++ {
		if _, ok := specials[id]; !ok {
			specials[id] = "<|reserved_" + strconv.Itoa(id) + "|>"
		}
	}
	return build(toks, specials, nVocab)
}

// gpt2UnicodeToByte inverts GPT-2's bytes_to_unicode: printable bytes map to
// themselves, the others to U+0100 onwards in byte order, so every byte has a
// visible, non-space character.
func gpt2UnicodeToByte() map[rune]byte {
	m := make(map[rune]byte, 256)
	for b, r := range gpt2ByteToUnicode() {
		m[r] = byte(b)
	}
	return m
}

func gpt2ByteToUnicode() [256]rune {
	var t [256]rune
	next := rune(256)
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			t[b] = rune(b)
		} else {
			t[b] = next
			next++
		}
	}
	return t
}
