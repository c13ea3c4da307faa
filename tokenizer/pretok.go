package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The o200k pre-tokenizer (spec §8) is the regex
//
//	A1 [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	A2 [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	A3 \p{N}{1,3}
//	A4  ?[^\s\p{L}\p{N}]+[\r\n/]*
//	A5 \s*[\r\n]+
//	A6 \s+(?!\S)
//	A7 \s+
//
// matched leftmost-first by a backtracking engine (fancy-regex in tiktoken,
// Oniguruma in HF tokenizers). RE2 has no lookahead, and a hand scanner is
// faster anyway, so nextPiece reproduces the backtracking result of each
// alternative directly. \s is Unicode White_Space in both engines (and in
// Go's unicode.IsSpace). Every character matches some alternative, so the
// pieces always cover the whole text.

// Character class bits.
const (
	cU  = 1 << iota // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
	cLo             // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
	cN              // \p{N}
	cWS             // \s
	cNL             // [\r\n]
	cX              // [^\r\n\p{L}\p{N}]
	cP              // [^\s\p{L}\p{N}]
)

// tableRunes is how many code points classTable covers: the BMP and plane 1
// (emoji, historic scripts, math letters). Nearly all text lies there, and a
// table load beats several unicode.Is binary searches.
const tableRunes = 0x20000

// classTable holds the class bits of code points below tableRunes; built once
// from the unicode range tables at init (well under a millisecond) and
// read-only after.
var classTable = buildClassTable()

func buildClassTable() *[tableRunes]uint8 {
	t := new([tableRunes]uint8)
	for i := range t {
		t[i] = cX | cP
	}
	set := func(tab *unicode.RangeTable, or, clear uint8) {
		for _, r := range tab.R16 {
			for c := uint32(r.Lo); c <= uint32(r.Hi); c += uint32(r.Stride) {
				t[c] = t[c]&^clear | or
			}
		}
		for _, r := range tab.R32 {
			for c := r.Lo; c <= r.Hi && c < tableRunes; c += r.Stride {
				t[c] = t[c]&^clear | or
			}
		}
	}
	set(unicode.Lu, cU, cX|cP)
	set(unicode.Lt, cU, cX|cP)
	set(unicode.Ll, cLo, cX|cP)
	set(unicode.Lm, cU|cLo, cX|cP)
	set(unicode.Lo, cU|cLo, cX|cP)
	set(unicode.M, cU|cLo, 0) // marks are not letters: they stay in X and P
	set(unicode.N, cN, cX|cP)
	set(unicode.White_Space, cWS, cP)
	t['\r'] = t['\r']&^cX | cNL
	t['\n'] = t['\n']&^cX | cNL
	return t
}

// classOf computes the class bits of any rune; used above the table and to
// cross-check the table in tests.
func classOf(r rune) uint8 {
	var c uint8
	letter := unicode.IsLetter(r)
	switch {
	case letter && unicode.IsLower(r):
		c |= cLo
	case letter && (unicode.IsUpper(r) || unicode.IsTitle(r)):
		c |= cU
	case letter: // Lm, Lo
		c |= cU | cLo
	case unicode.IsMark(r):
		c |= cU | cLo
	}
	num := unicode.IsNumber(r)
	ws := unicode.IsSpace(r)
	nl := r == '\r' || r == '\n'
	if num {
		c |= cN
	}
	if ws {
		c |= cWS
	}
	if nl {
		c |= cNL
	}
	if !letter && !num && !nl {
		c |= cX
	}
	if !letter && !num && !ws {
		c |= cP
	}
	return c
}

// classAt returns the class bits and byte width of the character at s[i].
// An invalid byte decodes as U+FFFD of width 1 (class So), so arbitrary
// bytes are still split and encoded byte-level.
func classAt(s string, i int) (uint8, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return classTable[c], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if r < tableRunes {
		return classTable[r], n
	}
	return classOf(r), n
}

// runOf returns the end of the run of characters with any bit of mask,
// starting at i.
func runOf(s string, i int, mask uint8) int {
	for i < len(s) {
		c, n := classAt(s, i)
		if c&mask == 0 {
			break
		}
		i += n
	}
	return i
}

// contraction returns the length of (?i:'s|'t|'re|'ve|'m|'ll|'d) at s[i:], or
// 0. Only the ASCII apostrophe counts. Case-insensitive matching uses Unicode
// simple case folding, under which 's' also matches U+017F LONG S ('ſ'); no
// other character folds to these letters.
func contraction(s string, i int) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return 0
	}
	switch s[i+1] {
	case 's', 'S', 't', 'T', 'm', 'M', 'd', 'D':
		return 2
	case 0xC5: // U+017F is C5 BF
		if i+2 < len(s) && s[i+2] == 0xBF {
			return 3
		}
	case 'r', 'R', 'v', 'V':
		if i+2 < len(s) && (s[i+2] == 'e' || s[i+2] == 'E') {
			return 3
		}
	case 'l', 'L':
		if i+2 < len(s) && (s[i+2] == 'l' || s[i+2] == 'L') {
			return 3
		}
	}
	return 0
}

// matchA1 is the backtracking result of U*L+C? at q, or -1. U* is greedy, so
// L+ starts at the run's end if that character is in L; otherwise U* gives
// back characters until one in L (an Lm/Lo/M inside the run) is exposed, and
// L+ then takes just that one, since what follows it in the run is not in L.
func matchA1(s string, q int) int {
	lastLoEnd := -1
	i := q
	for i < len(s) {
		c, n := classAt(s, i)
		if c&cU == 0 {
			break
		}
		if c&cLo != 0 {
			lastLoEnd = i + n
		}
		i += n
	}
	e := lastLoEnd
	if i < len(s) {
		if c, _ := classAt(s, i); c&cLo != 0 {
			e = runOf(s, i, cLo)
		}
	}
	if e < 0 {
		return -1
	}
	return e + contraction(s, e)
}

// matchA2 is U+L*C? at q, or -1; the optional parts always succeed, so the
// greedy choices stand.
func matchA2(s string, q int) int {
	i := runOf(s, q, cU)
	if i == q {
		return -1
	}
	e := runOf(s, i, cLo)
	return e + contraction(s, e)
}

// nextPiece returns the end of the pre-tokenizer piece starting at p < len(s).
func nextPiece(s string, p int) int {
	c0, n0 := classAt(s, p)

	// A1 then A2, each first with the optional leading X taken, then without.
	// Skipping X can only help when the first character is itself in U or L
	// (a mark, which is in X too); otherwise U*/U+ and L+ fail at it.
	xTake := c0&cX != 0
	xSkip := !xTake || c0&(cU|cLo) != 0
	if xTake && p+n0 < len(s) {
		if e := matchA1(s, p+n0); e >= 0 {
			return e
		}
	}
	if xSkip {
		if e := matchA1(s, p); e >= 0 {
			return e
		}
	}
	if xTake && p+n0 < len(s) {
		if e := matchA2(s, p+n0); e >= 0 {
			return e
		}
	}
	if xSkip {
		if e := matchA2(s, p); e >= 0 {
			return e
		}
	}

	// A3: \p{N}{1,3}
	if c0&cN != 0 {
		e := p + n0
		for k := 1; k < 3 && e < len(s); k++ {
			c, n := classAt(s, e)
			if c&cN == 0 {
				break
			}
			e += n
		}
		return e
	}

	// A4: ' '?P+[\r\n/]*. With the space taken P+ must start right after it;
	// without it P+ would start at the space, which is \s, so that fails.
	q, cq, nq := p, c0, n0
	if s[p] == ' ' && p+1 < len(s) {
		if c, n := classAt(s, p+1); c&cP != 0 {
			q, cq, nq = p+1, c, n
		}
	}
	if cq&cP != 0 {
		e := runOf(s, q+nq, cP)
		for e < len(s) && (s[e] == '\r' || s[e] == '\n' || s[e] == '/') {
			e++
		}
		return e
	}

	// Only whitespace is left (every other character matched above).
	// Scan the run, noting the end of its last \r/\n and its last character.
	end, lastNLEnd, lastStart, count := p, -1, p, 0
	for end < len(s) {
		c, n := classAt(s, end)
		if c&cWS == 0 {
			break
		}
		if c&cNL != 0 {
			lastNLEnd = end + n
		}
		lastStart = end
		end += n
		count++
	}
	switch {
	case count == 0:
		// Unreachable: every character is in some class above. Consume one
		// character anyway so a table bug can never loop forever.
		return p + n0
	case lastNLEnd > 0:
		// A5: \s* backtracks to the last \r/\n of the run; [\r\n]+ takes it.
		return lastNLEnd
	case end == len(s):
		// A6 at the end of text: (?!\S) holds after the whole run.
		return end
	case count >= 2:
		// A6: give back the last whitespace, which then prefixes the next piece.
		return lastStart
	default:
		// A7: a single whitespace character before a non-space.
		return end
	}
}
