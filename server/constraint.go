package server

import (
	"math"

	"github.com/gptoss/gptoss/harmony"
	"github.com/gptoss/gptoss/tokenizer"
)

// toolCallConstraint makes the assistant's next message a call to one of
// the allowed functions with a JSON object as arguments, for tool_choice
// "required" or a named function. After the prompt's <|start|>assistant it
// forces the header
//
//	" to=functions.NAME" <|channel|> "commentary " <|constrain|> "json" <|message|>
//
// (one header per allowed name; the model picks among them), then only
// tokens that keep the arguments a valid JSON prefix, then <|call|>.
//
// A call must also end within max_tokens: once the arguments have used
// their budget, or the tokens left are just enough to close every open
// string and container, only the bytes of the shortest completion are
// allowed, one single-byte token at a time.
type toolCallConstraint struct {
	tok     *tokenizer.Tokenizer
	headers [][]int32
	alive   []bool
	pos     int // header tokens generated
	inArgs  bool
	args    jsonPrefix
	vocab   int // ids below this are ordinary tokens
	left    int // tokens the request may still generate
	argToks int // tokens of arguments so far
}

// maxArgTokens bounds a call's arguments; a weak or random model would
// otherwise fill a string until max_tokens.
const maxArgTokens = 256

func newToolCallConstraint(tok *tokenizer.Tokenizer, names []string, vocab, maxTokens int) *toolCallConstraint {
	c := &toolCallConstraint{tok: tok, vocab: min(vocab, harmony.FirstSpecialID), left: maxTokens}
	for _, n := range names {
		var h []int32
		h = append(h, toInt32(tok.Encode(" to="+harmony.FunctionsPrefix+n))...)
		h = append(h, harmony.TokenChannel)
		h = append(h, toInt32(tok.Encode("commentary "))...)
		h = append(h, harmony.TokenConstrain)
		h = append(h, toInt32(tok.Encode("json"))...)
		h = append(h, harmony.TokenMessage)
		c.headers = append(c.headers, h)
		c.alive = append(c.alive, true)
	}
	return c
}

// Mask implements engine.Constraint.
func (c *toolCallConstraint) Mask(logits []float32) {
	neg := float32(math.Inf(-1))
	if !c.inArgs {
		allowed := map[int32]bool{}
		for i, h := range c.headers {
			if c.alive[i] && c.pos < len(h) {
				allowed[h[c.pos]] = true
			}
		}
		for id := range logits {
			if !allowed[int32(id)] {
				logits[id] = neg
			}
		}
		return
	}
	if c.args.done() {
		for id := range logits {
			if id != harmony.TokenCall {
				logits[id] = neg
			}
		}
		return
	}
	if c.closing() {
		force := -1
		if id, ok := c.tok.Lookup(string([]byte{c.args.closer()})); ok {
			force = id
		}
		for id := range logits {
			if id != force {
				logits[id] = neg
			}
		}
		return
	}
	// Only ordinary tokens whose bytes keep the arguments a JSON prefix.
	for id := range logits {
		if id >= c.vocab || logits[id] == neg {
			logits[id] = neg
			continue
		}
		s, ok := c.tok.TokenString(id)
		if !ok || s == "" {
			logits[id] = neg
			continue
		}
		try := c.args
		for i := 0; i < len(s); i++ {
			if !try.byte(s[i]) {
				logits[id] = neg
				break
			}
		}
	}
}

// closing reports that the arguments must now be finished: the budget
// is spent or only enough tokens are left to close what is open (one per
// container, a few for a string, key and value, one for <|call|>).
func (c *toolCallConstraint) closing() bool {
	return c.argToks >= maxArgTokens || c.left <= 2*c.args.depth+6
}

// Advance implements engine.Constraint.
func (c *toolCallConstraint) Advance(id int32) {
	c.left--
	if c.inArgs {
		c.argToks++
		if s, ok := c.tok.TokenString(int(id)); ok && int(id) < c.vocab {
			c.args.feed([]byte(s))
		}
		return
	}
	for i, h := range c.headers {
		c.alive[i] = c.alive[i] && c.pos < len(h) && h[c.pos] == id
		if c.alive[i] && c.pos+1 == len(h) {
			c.inArgs = true
		}
	}
	c.pos++
}
