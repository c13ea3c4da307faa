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
type toolCallConstraint struct {
	tok     *tokenizer.Tokenizer
	headers [][]int32
	alive   []bool
	pos     int // header tokens generated
	inArgs  bool
	args    jsonPrefix
	vocab   int // ids below this are ordinary tokens
}

func newToolCallConstraint(tok *tokenizer.Tokenizer, names []string, vocab int) *toolCallConstraint {
	c := &toolCallConstraint{tok: tok, vocab: min(vocab, harmony.FirstSpecialID)}
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

// Advance implements engine.Constraint.
func (c *toolCallConstraint) Advance(id int32) {
	if c.inArgs {
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
