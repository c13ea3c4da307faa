package harmony

// Special token ids of o200k_harmony (spec §7.1). They are fixed by the
// format, so harmony defines them itself instead of importing the tokenizer.
const (
	TokenStartOfText = 199998 // <|startoftext|> (not used by harmony)
	TokenEndOfText   = 199999 // <|endoftext|>: base-tokenizer end of text
	TokenReturn      = 200002 // <|return|>: end of the final answer (stop)
	TokenConstrain   = 200003 // <|constrain|>: introduces a constrained content type
	TokenChannel     = 200005 // <|channel|>: header, channel name follows
	TokenStart       = 200006 // <|start|>: begins a message
	TokenEnd         = 200007 // <|end|>: ends a message, generation continues
	TokenMessage     = 200008 // <|message|>: header ends, content follows
	TokenCall        = 200012 // <|call|>: ends a tool-call message (stop)

	// FirstSpecialID is the lowest special id; every id at or above it is a
	// control or reserved token and never decodes to content text.
	FirstSpecialID = TokenStartOfText
)

// ConstrainMarker is how a constrained content type is spelled inside
// Message.ContentType ("<|constrain|>json"); the renderer turns the marker
// into the special token, mirroring the harmony library.
const ConstrainMarker = "<|constrain|>"

// SpecialName returns the literal text of a harmony special token id, or ""
// when id is not one of the named harmony specials.
func SpecialName(id int) string {
	switch id {
	case TokenStartOfText:
		return "<|startoftext|>"
	case TokenEndOfText:
		return "<|endoftext|>"
	case TokenReturn:
		return "<|return|>"
	case TokenConstrain:
		return "<|constrain|>"
	case TokenChannel:
		return "<|channel|>"
	case TokenStart:
		return "<|start|>"
	case TokenEnd:
		return "<|end|>"
	case TokenMessage:
		return "<|message|>"
	case TokenCall:
		return "<|call|>"
	}
	return ""
}

// StopTokens returns the ids that end sampling of an assistant turn:
// <|return|> and <|call|> (harmony's stop_tokens_for_assistant_actions).
// <|endoftext|> is included because the HF generation config stops on it
// too. A fresh slice is returned so callers may modify it.
func StopTokens() []int {
	return []int{TokenReturn, TokenCall, TokenEndOfText}
}

// Encoder turns ordinary text into token ids. It must never produce special
// ids for text that merely looks like a special token; *tokenizer.Tokenizer's
// Encode satisfies this.
type Encoder interface {
	Encode(text string) []int
}

// Vocab gives the raw bytes of a token id (possibly an incomplete UTF-8
// fragment); ok is false for unknown ids. *tokenizer.Tokenizer satisfies it.
type Vocab interface {
	TokenString(id int) (s string, ok bool)
}
