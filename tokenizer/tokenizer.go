// Package tokenizer implements the o200k_harmony byte-level BPE tokenizer used
// by gpt-oss (spec §7.1, §8) with tiktoken semantics.
//
// A *Tokenizer is immutable after construction and safe for concurrent use by
// any number of goroutines. Construction parses the rank table (about 0.1 s),
// so callers build one and keep it.
//
// Encoding follows tiktoken: the text is split by the o200k pre-tokenizer
// regex (a hand scanner here, see pretok.go), and each piece is one token if
// its bytes are one, else the result of repeatedly merging the adjacent pair
// whose concatenation has the lowest rank.
package tokenizer

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/pkoukk/tiktoken-go-loader/assets"
)

// Special token ids of o200k_harmony (spec §7.1).
const (
	StartOfText = 199998 // <|startoftext|>
	EndOfText   = 199999 // <|endoftext|>
	Return      = 200002 // <|return|>: end of the final answer (stop)
	Constrain   = 200003 // <|constrain|>
	Channel     = 200005 // <|channel|>
	Start       = 200006 // <|start|>
	End         = 200007 // <|end|>
	Message     = 200008 // <|message|>
	Call        = 200012 // <|call|>: end of a tool call (stop)
	EndOfPrompt = 200018 // <|endofprompt|>

	// NumVocab is the number of token ids (= embedding rows).
	NumVocab = 201088
	// NumRanks is the number of ordinary (byte-sequence) tokens in o200k_base.
	NumRanks = 199998
)

// O200kBaseSHA256 is the sha256 of the embedded o200k_base.tiktoken file.
const O200kBaseSHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"

// o200kFile is the asset name inside tiktoken-go-loader's embed.FS.
const o200kFile = "o200k_base.tiktoken"

// harmonySpecials are the named specials; every other id in
// [NumRanks, NumVocab) is <|reserved_ID|> (gpt_oss/tokenizer.py naming).
var harmonySpecials = map[int]string{
	StartOfText: "<|startoftext|>",
	EndOfText:   "<|endoftext|>",
	Return:      "<|return|>",
	Constrain:   "<|constrain|>",
	Channel:     "<|channel|>",
	Start:       "<|start|>",
	End:         "<|end|>",
	Message:     "<|message|>",
	Call:        "<|call|>",
	EndOfPrompt: "<|endofprompt|>",
}

// Tokenizer encodes text to token ids and back. The zero value is not usable;
// build one with Default or Load.
type Tokenizer struct {
	// ranks maps an ordinary token's bytes to its id (rank == id). Keys are
	// substrings of one backing string, so the table costs one allocation.
	ranks map[string]uint32
	// tokens[id] is the byte string of ordinary id, or the text of a special;
	// "" for ids that are neither.
	tokens []string
	// special[id] marks ids whose tokens entry is a special token's text.
	special []bool
	// specialIDs maps a special token's text to its id.
	specialIDs map[string]int
	// maxSpecialLen bounds candidate length when scanning for specials.
	maxSpecialLen int
	// byteRank and pairRank are dense copies of ranks for 1- and 2-byte
	// strings (noRank if absent). BPE looks up every adjacent byte pair of a
	// piece first; a 256 KiB table beats hashing for those.
	byteRank [256]uint32
	pairRank []uint32 // indexed by a<<8 | b
}

// Default returns the embedded o200k_harmony tokenizer. Each call parses the
// embedded table again; keep the result.
func Default() (*Tokenizer, error) {
	data, err := O200kBase()
	if err != nil {
		return nil, err
	}
	toks, err := parseTiktoken(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: parse embedded %s: %w", o200kFile, err)
	}
	if len(toks) != NumRanks {
		return nil, fmt.Errorf("tokenizer: embedded %s has %d tokens, want %d", o200kFile, len(toks), NumRanks)
	}
	specials := make(map[int]string, NumVocab-NumRanks)
	for id := NumRanks; id < NumVocab; id++ {
		name, ok := harmonySpecials[id]
		if !ok {
			name = "<|reserved_" + strconv.Itoa(id) + "|>"
		}
		specials[id] = name
	}
	t, err := build(toks, specials, NumVocab)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: embedded o200k_harmony: %w", err)
	}
	return t, nil
}

// O200kBase returns the raw bytes of the embedded o200k_base.tiktoken file
// after checking its sha256, so a tampered or swapped module is caught here.
func O200kBase() ([]byte, error) {
	data, err := assets.Assets.ReadFile(o200kFile)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: read embedded %s: %w", o200kFile, err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != O200kBaseSHA256 {
		return nil, fmt.Errorf("tokenizer: embedded %s sha256 %s, want %s", o200kFile, got, O200kBaseSHA256)
	}
	return data, nil
}

// parseTiktoken parses "base64 rank\n" lines into a slice indexed by rank.
// Ranks must be dense (0..n-1), which o200k_base's are; holes would make ids
// ambiguous with specials.
func parseTiktoken(data []byte) ([]string, error) {
	n := strings.Count(string(data), "\n") + 1
	toks := make([]string, 0, n)
	// One backing buffer for all token bytes keeps construction cheap.
	buf := make([]byte, 0, len(data)*3/4)
	offs := make([]int, 0, n+1)
	rest := string(data)
	for line := 1; rest != ""; line++ {
		var l string
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i], rest[i+1:]
		} else {
			l, rest = rest, ""
		}
		if l == "" {
			continue
		}
		sp := strings.IndexByte(l, ' ')
		if sp < 0 {
			return nil, fmt.Errorf("line %d: no space", line)
		}
		rank, err := strconv.Atoi(l[sp+1:])
		if err != nil {
			return nil, fmt.Errorf("line %d: rank: %w", line, err)
		}
		if rank != len(offs) {
			return nil, fmt.Errorf("line %d: rank %d out of order, want %d", line, rank, len(offs))
		}
		offs = append(offs, len(buf))
		buf, err = base64.StdEncoding.AppendDecode(buf, []byte(l[:sp]))
		if err != nil {
			return nil, fmt.Errorf("line %d: base64: %w", line, err)
		}
	}
	offs = append(offs, len(buf))
	all := string(buf)
	for i := 0; i+1 < len(offs); i++ {
		toks = append(toks, all[offs[i]:offs[i+1]])
	}
	return toks, nil
}

// build assembles a Tokenizer from ordinary tokens (id = index; "" = hole) and
// specials. It checks the invariants the encoder relies on: every single byte
// is a token (so BPE always terminates with known pieces) and no duplicates.
func build(toks []string, specials map[int]string, nVocab int) (*Tokenizer, error) {
	for id := range specials {
		if id+1 > nVocab {
			nVocab = id + 1
		}
	}
	if len(toks) > nVocab {
		nVocab = len(toks)
	}
	t := &Tokenizer{
		ranks:      make(map[string]uint32, len(toks)),
		tokens:     make([]string, nVocab),
		special:    make([]bool, nVocab),
		specialIDs: make(map[string]int, len(specials)),
	}
	for id, s := range toks {
		if s == "" {
			continue
		}
		if _, dup := t.ranks[s]; dup {
			return nil, fmt.Errorf("token %d %q duplicates id %d", id, s, t.ranks[s])
		}
		t.ranks[s] = uint32(id)
		t.tokens[id] = s
	}
	for b := 0; b < 256; b++ {
		r, ok := t.ranks[string([]byte{byte(b)})]
		if !ok {
			return nil, fmt.Errorf("vocabulary lacks single byte 0x%02x", b)
		}
		t.byteRank[b] = r
	}
	t.pairRank = make([]uint32, 1<<16)
	for i := range t.pairRank {
		t.pairRank[i] = noRank
	}
	for id, s := range toks {
		if len(s) == 2 {
			t.pairRank[int(s[0])<<8|int(s[1])] = uint32(id)
		}
	}
	for id, name := range specials {
		// EncodeWithSpecials' scanner relies on this shape.
		if len(name) < 4 || !strings.HasPrefix(name, "<|") || strings.Index(name, "|>") != len(name)-2 {
			return nil, fmt.Errorf("special id %d text %q is not of the form <|name|>", id, name)
		}
		if id < 0 {
			return nil, fmt.Errorf("special %q has negative id %d", name, id)
		}
		if t.tokens[id] != "" {
			return nil, fmt.Errorf("special %q id %d is also ordinary token %q", name, id, t.tokens[id])
		}
		if other, dup := t.specialIDs[name]; dup {
			return nil, fmt.Errorf("special %q has ids %d and %d", name, other, id)
		}
		t.tokens[id] = name
		t.special[id] = true
		t.specialIDs[name] = id
		t.maxSpecialLen = max(t.maxSpecialLen, len(name))
	}
	return t, nil
}

// NumTokens returns the vocabulary size (number of ids, including specials
// and any unused ids).
func (t *Tokenizer) NumTokens() int { return len(t.tokens) }

// SpecialID returns the id of a special token given its text, e.g. "<|start|>".
func (t *Tokenizer) SpecialID(text string) (int, bool) {
	id, ok := t.specialIDs[text]
	return id, ok
}

// IsSpecial reports whether id is a special (control or reserved) token.
func (t *Tokenizer) IsSpecial(id int) bool {
	return id >= 0 && id < len(t.special) && t.special[id]
}

// TokenBytes returns the bytes id decodes to (a special's text for specials),
// or nil for an unknown id. The result is a fresh copy.
func (t *Tokenizer) TokenBytes(id int) []byte {
	if id < 0 || id >= len(t.tokens) || t.tokens[id] == "" {
		return nil
	}
	return []byte(t.tokens[id])
}

// TokenString is TokenBytes without the copy; ok is false for unknown ids.
// Ordinary tokens may hold partial UTF-8.
func (t *Tokenizer) TokenString(id int) (s string, ok bool) {
	if id < 0 || id >= len(t.tokens) || t.tokens[id] == "" {
		return "", false
	}
	return t.tokens[id], true
}

// Lookup returns the id of an ordinary token whose bytes are exactly s.
func (t *Tokenizer) Lookup(s string) (int, bool) {
	id, ok := t.ranks[s]
	return int(id), ok
}

// Encode tokenizes text as ordinary text: special-token strings such as
// "<|start|>" are encoded as the plain characters they are made of. Use it for
// all request content so no one can inject a message boundary. Invalid UTF-8
// is tolerated (its bytes are encoded byte-level), so Encode never fails.
func (t *Tokenizer) Encode(text string) []int {
	return t.AppendEncode(make([]int, 0, len(text)/3+1), text)
}

// AppendEncode is Encode appending to dst, for callers that reuse a buffer.
func (t *Tokenizer) AppendEncode(dst []int, text string) []int {
	for p := 0; p < len(text); {
		e := nextPiece(text, p)
		dst = t.encodePiece(dst, text[p:e])
		p = e
	}
	return dst
}

// EncodeWithSpecials is Encode but turns the exact text of any special token
// into its id. Only for text the harmony renderer writes itself.
func (t *Tokenizer) EncodeWithSpecials(text string) []int {
	dst := make([]int, 0, len(text)/3+1)
	start := 0 // beginning of the not-yet-encoded ordinary text
	closeAt := -1
	for i := 0; ; {
		j := strings.Index(text[i:], "<|")
		if j < 0 {
			break
		}
		i += j
		// All specials are "<|name|>" with no "|>" inside name, so only the
		// first "|>" after i can end a special starting at i. Cache it so
		// text full of "<|" stays linear.
		if closeAt < i+2 {
			k := strings.Index(text[i+2:], "|>")
			if k < 0 {
				break
			}
			closeAt = i + 2 + k
		}
		end := closeAt + 2
		if end-i <= t.maxSpecialLen {
			if id, ok := t.specialIDs[text[i:end]]; ok {
				dst = t.AppendEncode(dst, text[start:i])
				dst = append(dst, id)
				start, i = end, end
				continue
			}
		}
		i++
	}
	return t.AppendEncode(dst, text[start:])
}

// encodePiece appends the ids of one pre-tokenized piece.
func (t *Tokenizer) encodePiece(dst []int, piece string) []int {
	if len(piece) == 1 {
		return append(dst, int(t.byteRank[piece[0]]))
	}
	if id, ok := t.ranks[piece]; ok {
		return append(dst, int(id))
	}
	return t.bytePairMerge(dst, piece)
}
