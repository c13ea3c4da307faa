// Package harmony implements OpenAI's harmony chat format for gpt-oss: a
// renderer that turns a conversation into the prompt token sequence, and a
// streaming parser that turns sampled tokens back into reasoning, content and
// tool-call events (spec §7).
//
// Rendering follows openai/harmony v0.0.8 byte for byte (see testdata/ for
// the reproduced fixtures). The result is a list of pieces, special token
// ids and ordinary text, so content that merely looks like "<|end|>" can
// never become a control token: text is encoded with an ordinary Encoder.
//
//	r, err := harmony.RenderCompletion([]harmony.Message{
//		harmony.SystemMessage(harmony.DefaultSystemContent()),
//		harmony.UserMessage("What is 2 + 2?"),
//	}, harmony.RenderOptions{})
//	ids := r.Tokens(tok) // prompt ending in <|start|>assistant
//
// The Parser consumes one sampled token at a time and never fails: whatever
// the model emits degrades to content rather than to an error.
//
//	p := harmony.NewParser(harmony.ParserOptions{})
//	for each sampled id {
//		piece, _ := tok.TokenString(id)
//		for _, ev := range p.Push(id, piece) { ... }
//	}
//	events := p.Finish()
package harmony
