package tokenizer

import "unicode/utf8"

// replacement is U+FFFD in UTF-8.
const replacement = "\uFFFD"

// DecodeBytes returns the raw concatenated bytes of ids (a special's text for
// special ids, U+FFFD for unknown ids). The result may be invalid UTF-8 when
// ids split a character; Decode and StreamDecoder repair that.
func (t *Tokenizer) DecodeBytes(ids []int) []byte {
	var out []byte
	for _, id := range ids {
		out = t.appendToken(out, id)
	}
	return out
}

// Decode returns the text of ids as valid UTF-8. Each maximal invalid
// subsequence becomes one U+FFFD (the Unicode-recommended practice, which is
// what the references' errors="replace" / from_utf8_lossy do). Decoding the
// ids of any valid UTF-8 text gives that text back.
func (t *Tokenizer) Decode(ids []int) string {
	raw := t.DecodeBytes(ids)
	out, _ := appendValid(make([]byte, 0, len(raw)), raw, true)
	return string(out)
}

func (t *Tokenizer) appendToken(out []byte, id int) []byte {
	if id < 0 || id >= len(t.tokens) || t.tokens[id] == "" {
		return append(out, replacement...)
	}
	return append(out, t.tokens[id]...)
}

// StreamDecoder turns ids into text incrementally and only ever emits
// complete, valid UTF-8: bytes of a character split across tokens are held
// back until it completes, and a sequence that can no longer become valid is
// emitted as U+FFFD as soon as that is certain. The concatenation of all Add
// results and the final Flush equals Decode of all ids.
//
// A StreamDecoder is not safe for concurrent use; use one per stream.
type StreamDecoder struct {
	t       *Tokenizer
	pending []byte // at most 3 bytes of an incomplete character
	buf     []byte // reused scratch
}

// NewStreamDecoder returns a decoder for one output stream.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder {
	return &StreamDecoder{t: t}
}

// Add feeds one id and returns the text that became complete ("" if none).
func (d *StreamDecoder) Add(id int) string {
	d.pending = d.t.appendToken(d.pending, id)
	return d.drain(false)
}

// Flush returns any held-back bytes (as U+FFFD, since they are an incomplete
// character) and resets the decoder.
func (d *StreamDecoder) Flush() string {
	return d.drain(true)
}

// Pending reports whether bytes of an incomplete character are held back.
func (d *StreamDecoder) Pending() bool { return len(d.pending) > 0 }

func (d *StreamDecoder) drain(final bool) string {
	var n int
	d.buf, n = appendValid(d.buf[:0], d.pending, final)
	d.pending = append(d.pending[:0], d.pending[n:]...)
	return string(d.buf)
}

// appendValid appends the valid UTF-8 rendering of src to dst and returns how
// many bytes of src it consumed. Unless final, a trailing prefix of a valid
// character is left unconsumed because more bytes may complete it.
func appendValid(dst, src []byte, final bool) ([]byte, int) {
	i := 0
	for i < len(src) {
		b := src[i]
		if b < utf8.RuneSelf {
			dst = append(dst, b)
			i++
			continue
		}
		size, lo, hi := seqInfo(b)
		if size == 0 { // never a lead byte
			dst = append(dst, replacement...)
			i++
			continue
		}
		// Check continuation bytes; k is how many of the sequence are valid.
		k := 1
		for ; k < size && i+k < len(src); k++ {
			c := src[i+k]
			if k > 1 {
				lo, hi = 0x80, 0xBF
			}
			if c < lo || c > hi {
				break
			}
		}
		switch {
		case k == size:
			dst = append(dst, src[i:i+size]...)
			i += size
		case i+k == len(src) && !final:
			return dst, i // a valid prefix so far: wait for more bytes
		default:
			// src[i:i+k] is a maximal subpart that cannot complete.
			dst = append(dst, replacement...)
			i += k
		}
	}
	return dst, i
}

// seqInfo gives a lead byte's sequence length and the allowed range of the
// second byte (Unicode Table 3-7, which rules out overlongs and surrogates);
// size 0 for bytes that never start a character.
func seqInfo(b byte) (size int, lo, hi byte) {
	switch {
	case b >= 0xC2 && b <= 0xDF:
		return 2, 0x80, 0xBF
	case b == 0xE0:
		return 3, 0xA0, 0xBF
	case b == 0xED:
		return 3, 0x80, 0x9F
	case b >= 0xE1 && b <= 0xEF:
		return 3, 0x80, 0xBF
	case b == 0xF0:
		return 4, 0x90, 0xBF
	case b >= 0xF1 && b <= 0xF3:
		return 4, 0x80, 0xBF
	case b == 0xF4:
		return 4, 0x80, 0x8F
	}
	return 0, 0, 0
}
