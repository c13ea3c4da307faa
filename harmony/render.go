package harmony

import (
	"fmt"
	"slices"
	"strings"
)

// Piece is one element of a rendering: either a special token id or text
// that must be encoded with the ordinary encoder.
type Piece struct {
	Special int    // special token id; 0 for a text piece
	Text    string // ordinary text (Special == 0)
}

// Rendered is a rendered conversation as a list of pieces. Text pieces are
// kept exactly as harmony encodes them, one encode call per piece, so the
// token sequence matches harmony's even where BPE would merge across the
// boundary of two adjacent pieces.
type Rendered []Piece

// String returns the rendering with special tokens spelled out, e.g.
// "<|start|>user<|message|>Hi<|end|>". Useful for tests and debugging; note
// that content containing "<|end|>" is indistinguishable from the special
// here, but not in Tokens.
func (r Rendered) String() string {
	var sb strings.Builder
	for _, p := range r {
		if p.Special != 0 {
			sb.WriteString(SpecialName(p.Special))
		} else {
			sb.WriteString(p.Text)
		}
	}
	return sb.String()
}

// Tokens encodes the rendering: specials become their ids, text is encoded
// with enc (ordinary encoding, so text never turns into special tokens).
func (r Rendered) Tokens(enc Encoder) []int {
	return r.AppendTokens(nil, enc)
}

// AppendTokens appends the encoding of r to dst and returns it.
func (r Rendered) AppendTokens(dst []int, enc Encoder) []int {
	for _, p := range r {
		if p.Special != 0 {
			dst = append(dst, p.Special)
		} else {
			dst = append(dst, enc.Encode(p.Text)...)
		}
	}
	return dst
}

func (r *Rendered) special(id int) { *r = append(*r, Piece{Special: id}) }

func (r *Rendered) text(s string) {
	if s != "" {
		*r = append(*r, Piece{Text: s})
	}
}

// RenderOptions controls conversation rendering.
type RenderOptions struct {
	// KeepAnalysis keeps the analysis (chain-of-thought) messages of turns
	// that already ended in a final answer. By default they are dropped, as
	// the model was trained to see them dropped.
	KeepAnalysis bool
}

// RenderMessage renders one message on its own (no conversation context, so
// the system message does not mention function tools).
func RenderMessage(m Message) (Rendered, error) {
	var r Rendered
	if err := renderMessage(&r, m, false); err != nil {
		return nil, err
	}
	return r, nil
}

// RenderConversation renders msgs as conversation history.
func RenderConversation(msgs []Message, opts RenderOptions) (Rendered, error) {
	var r Rendered
	if err := renderConversation(&r, msgs, opts); err != nil {
		return nil, err
	}
	return r, nil
}

// RenderCompletion renders msgs followed by "<|start|>assistant", the prompt
// from which the model samples the next assistant message.
func RenderCompletion(msgs []Message, opts RenderOptions) (Rendered, error) {
	var r Rendered
	if err := renderConversation(&r, msgs, opts); err != nil {
		return nil, err
	}
	r.special(TokenStart)
	r.text(string(RoleAssistant))
	return r, nil
}

// RenderTraining renders msgs as a training target: like
// RenderConversation, but if the last message is an assistant final answer
// it ends with <|return|> instead of <|end|>.
func RenderTraining(msgs []Message, opts RenderOptions) (Rendered, error) {
	r, err := RenderConversation(msgs, opts)
	if err != nil {
		return nil, err
	}
	if n := len(msgs); n > 0 && len(r) > 0 {
		last := msgs[n-1]
		if last.Role == RoleAssistant && last.Channel == ChannelFinal {
			r[len(r)-1] = Piece{Special: TokenReturn}
		}
	}
	return r, nil
}

func renderConversation(r *Rendered, msgs []Message, opts RenderOptions) error {
	hasFunctions := false
	for _, m := range msgs {
		if m.Developer != nil && len(m.Developer.Functions) > 0 {
			hasFunctions = true
			break
		}
	}
	drop := make([]bool, len(msgs))
	if !opts.KeepAnalysis {
		drop = droppedAnalysis(msgs)
	}
	for i, m := range msgs {
		if drop[i] {
			continue
		}
		if err := renderMessage(r, m, hasFunctions); err != nil {
			return fmt.Errorf("harmony: message %d (%s): %w", i, m.Role, err)
		}
	}
	return nil
}

// droppedAnalysis marks the analysis messages to leave out of history: those
// of turns that ended in a final answer. A message is dropped when an
// assistant final message follows it before the last user message, so
//   - earlier turns lose their chain of thought once they were answered;
//   - the current turn keeps it during a tool loop (no final yet), and a
//     conversation that ends with a final answer keeps that turn's thinking
//     (harmony's test_keep_analysis_between_final_messages).
//
// This reproduces every harmony fixture on the subject, including
// test_multi_turn_auto_drop_analysis, which harmony v0.0.8's simpler
// "before the first final message" rule does not.
func droppedAnalysis(msgs []Message) []bool {
	drop := make([]bool, len(msgs))
	boundary := len(msgs)
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == RoleUser {
			boundary = i
			break
		}
	}
	finalAfter := false // an assistant final lies in (i, boundary)
	for i := boundary - 1; i >= 0; i-- {
		m := msgs[i]
		if m.Channel == ChannelAnalysis && finalAfter {
			drop[i] = true
		}
		if m.Role == RoleAssistant && m.Channel == ChannelFinal {
			finalAfter = true
		}
	}
	return drop
}

// renderMessage renders <|start|>HEADER<|message|>CONTENT END into r. Each
// text piece is a separate encode call, in the same places as harmony's.
func renderMessage(r *Rendered, m Message, hasFunctions bool) error {
	if !m.Role.valid() {
		return fmt.Errorf("unknown role %q", m.Role)
	}
	if m.System != nil && m.Role != RoleSystem {
		return fmt.Errorf("system content in a %s message", m.Role)
	}
	if m.Developer != nil && m.Role != RoleDeveloper {
		return fmt.Errorf("developer content in a %s message", m.Role)
	}
	r.special(TokenStart)
	if m.Role == RoleTool {
		// Tool outputs are authored by the tool: its name replaces the role.
		if m.Name == "" {
			return fmt.Errorf("tool message without a tool name")
		}
		r.text(m.Name)
	} else {
		r.text(string(m.Role))
		if m.Name != "" {
			r.text(":" + m.Name)
		}
	}
	recipient := m.Recipient
	if recipient == "all" {
		recipient = ""
	}
	if recipient != "" {
		r.text(" to=" + recipient)
	}
	if m.Channel != "" {
		r.special(TokenChannel)
		r.text(m.Channel)
	}
	if m.ContentType != "" {
		if rest, ok := strings.CutPrefix(m.ContentType, ConstrainMarker); ok {
			// The marker must be the special token, not its characters.
			r.text(" ")
			r.special(TokenConstrain)
			r.text(rest)
		} else {
			r.text(" " + m.ContentType)
		}
	}
	r.special(TokenMessage)
	if m.System != nil {
		s, err := renderSystemContent(m.System, hasFunctions)
		if err != nil {
			return err
		}
		r.text(s)
	}
	if m.Developer != nil {
		s, err := renderDeveloperContent(m.Developer)
		if err != nil {
			return err
		}
		r.text(s)
	}
	r.text(m.Content)
	if m.Role == RoleAssistant && recipient != "" {
		r.special(TokenCall)
	} else {
		r.special(TokenEnd)
	}
	return nil
}

// renderSystemContent builds the system message text: sections joined by a
// blank line.
func renderSystemContent(sc *SystemContent, hasFunctions bool) (string, error) {
	var sections []string
	var top []string
	if sc.ModelIdentity != "" {
		top = append(top, sc.ModelIdentity)
	}
	if sc.KnowledgeCutoff != "" {
		top = append(top, "Knowledge cutoff: "+sc.KnowledgeCutoff)
	}
	if sc.CurrentDate != "" {
		top = append(top, "Current date: "+sc.CurrentDate)
	}
	if len(top) > 0 {
		sections = append(sections, strings.Join(top, "\n"))
	}
	switch sc.ReasoningEffort {
	case "":
	case EffortLow, EffortMedium, EffortHigh:
		sections = append(sections, "Reasoning: "+string(sc.ReasoningEffort))
	default:
		return "", fmt.Errorf("unknown reasoning effort %q (want low, medium or high)", sc.ReasoningEffort)
	}
	if len(sc.Tools) > 0 {
		// Harmony keeps namespaces in a map ordered by name.
		ns := slices.Clone(sc.Tools)
		slices.SortStableFunc(ns, func(a, b ToolNamespace) int { return strings.Compare(a.Name, b.Name) })
		s, err := toolsSection(ns)
		if err != nil {
			return "", err
		}
		sections = append(sections, s)
	}
	if sc.Channels != nil && len(sc.Channels.Valid) > 0 {
		h := "# Valid channels: " + strings.Join(sc.Channels.Valid, ", ") + "."
		if sc.Channels.Required {
			h += " Channel must be included for every message."
		}
		if hasFunctions {
			h += "\nCalls to these tools must go to the commentary channel: 'functions'."
		}
		sections = append(sections, h)
	}
	return strings.Join(sections, "\n\n"), nil
}

// renderDeveloperContent builds the developer message text.
func renderDeveloperContent(dc *DeveloperContent) (string, error) {
	var sections []string
	if dc.Instructions != "" {
		sections = append(sections, "# Instructions", dc.Instructions)
	}
	if len(dc.Functions) > 0 {
		s, err := toolsSection([]ToolNamespace{{Name: "functions", Tools: dc.Functions}})
		if err != nil {
			return "", err
		}
		sections = append(sections, s)
	}
	return strings.Join(sections, "\n\n"), nil
}
