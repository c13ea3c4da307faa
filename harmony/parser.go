package harmony

import (
	"crypto/rand"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// StopReason says why an assistant turn stopped.
type StopReason string

// Stop reasons.
const (
	StopReturn StopReason = "return" // <|return|>: final answer complete
	StopCall   StopReason = "call"   // <|call|>: the model called a tool
	StopEOS    StopReason = "eos"    // <|endoftext|>
	StopLength StopReason = "length" // Finish without a stop token (token limit, truncation)
)

// Event is emitted by the Parser. The concrete types are MessageStart,
// ReasoningDelta, ContentDelta, ToolCallDelta, ToolCall, MessageEnd and Stop.
type Event interface{ isEvent() }

// MessageStart reports a completed header. Header.Content is empty.
type MessageStart struct{ Header Message }

// ReasoningDelta is chain-of-thought text (analysis channel). Text is always
// complete UTF-8.
type ReasoningDelta struct{ Text string }

// ContentDelta is user-visible text: the final channel, a commentary
// preamble (commentary without a recipient), or a message with a missing or
// unknown channel. Text is always complete UTF-8.
type ContentDelta struct {
	Channel string
	Text    string
}

// ToolCallDelta streams the arguments of the tool call being generated.
// ID and Name repeat on every delta so any one of them identifies the call.
type ToolCallDelta struct {
	Index     int
	ID        string
	Name      string
	Arguments string // the next piece of argument text
}

// ToolCall is a complete tool call, emitted when its message ends.
type ToolCall struct {
	Index int    // 0-based position among this parser's tool calls
	ID    string // generated; see ParserOptions.CallID
	// Name is the recipient without the "functions." prefix
	// ("get_weather"); built-in tools keep their full name ("browser.search").
	Name        string
	Recipient   string
	Channel     string
	ContentType string
	Arguments   string // raw text the model produced, normally JSON
	// InvalidJSON is set when Arguments is not valid JSON; the raw text is
	// still reported so the caller can decide.
	InvalidJSON bool
	// Truncated is set when the message never ended (Finish mid-message).
	Truncated bool
}

// MessageEnd reports a complete message with its whole content.
type MessageEnd struct {
	Message Message
	// Truncated is set when the message ended by Finish, not by a token.
	Truncated bool
}

// Stop reports a stop token, or a Finish without one.
type Stop struct{ Reason StopReason }

func (MessageStart) isEvent()   {}
func (ReasoningDelta) isEvent() {}
func (ContentDelta) isEvent()   {}
func (ToolCallDelta) isEvent()  {}
func (ToolCall) isEvent()       {}
func (MessageEnd) isEvent()     {}
func (Stop) isEvent()           {}

// ParserOptions configures a Parser. The zero value is ready to use.
type ParserOptions struct {
	// CallID returns the id of the n-th (0-based) tool call. Nil means
	// "call_" followed by random characters; tests set a deterministic one.
	CallID func(n int) string
	// MaxHeaderBytes is how much header text the parser accepts before
	// deciding the model skipped the header and is writing content. Zero
	// means 256. A newline in a header has the same effect.
	MaxHeaderBytes int
}

type parserState uint8

const (
	stateExpectStart parserState = iota // between messages
	stateHeader                         // after <|start|>, before <|message|>
	stateContent                        // after <|message|>
)

// msgKind routes a message's content to an event type.
type msgKind uint8

const (
	kindContent   msgKind = iota // ContentDelta
	kindReasoning                // ReasoningDelta
	kindCall                     // ToolCallDelta + ToolCall
	kindHidden                   // not assistant output: MessageEnd only
)

// hdrPart is a header element: a special (channel, constrain) or raw text.
type hdrPart struct {
	special int
	text    []byte
}

// Parser turns sampled tokens into events, one token at a time. It never
// fails and never panics: malformed output degrades to content (see the
// package tests for every case handled). A Parser is not safe for
// concurrent use.
//
// A new Parser assumes the prompt ended with "<|start|>assistant", so the
// first tokens are the rest of an assistant header; a stream that starts
// with <|start|> is handled as well.
type Parser struct {
	opts  ParserOptions
	state parserState

	hdr      []hdrPart
	hdrBytes int
	hdrRole  Role // role already known (from the prompt or recovery); "" if not

	cur     Message // header of the current message
	kind    msgKind
	content strings.Builder
	call    ToolCall
	pending []byte // incomplete UTF-8 tail of the current message

	stopped bool // the last meaningful token was a stop token
	nCalls  int
	events  []Event
}

// NewParser returns a parser positioned after "<|start|>assistant".
func NewParser(opts ParserOptions) *Parser {
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 256
	}
	p := &Parser{opts: opts}
	p.beginHeader(RoleAssistant)
	return p
}

// Push consumes one sampled token: its id and its raw bytes as a string
// (which may be an incomplete UTF-8 fragment; it is ignored for special
// ids). It returns the events the token completes, often none.
func (p *Parser) Push(id int, piece string) []Event {
	p.events = nil
	switch {
	case id >= FirstSpecialID:
		p.special(id)
	case id >= 0 && piece != "":
		p.text(piece)
	}
	return p.events
}

// Finish ends the stream: a message in progress is flushed (marked
// Truncated) and, unless the last token was a stop token, Stop{StopLength}
// is emitted.
func (p *Parser) Finish() []Event {
	p.events = nil
	switch p.state {
	case stateHeader:
		if p.headerAsMessage() {
			p.endMessage(true)
		}
	case stateContent:
		p.endMessage(true)
	}
	p.state = stateExpectStart
	if !p.stopped {
		p.emit(Stop{Reason: StopLength})
		p.stopped = true
	}
	return p.events
}

func (p *Parser) emit(e Event) { p.events = append(p.events, e) }

func (p *Parser) beginHeader(role Role) {
	p.state = stateHeader
	p.hdr = p.hdr[:0]
	p.hdrBytes = 0
	p.hdrRole = role
}

func (p *Parser) special(id int) {
	switch id {
	case TokenStart:
		switch p.state {
		case stateHeader:
			// A header that never reached <|message|> is kept as content
			// rather than lost.
			if p.headerAsMessage() {
				p.endMessage(false)
			}
		case stateContent:
			// The model forgot <|end|>.
			p.endMessage(false)
		}
		p.beginHeader("")
	case TokenChannel, TokenConstrain:
		switch p.state {
		case stateExpectStart:
			// "<|start|>assistant" was skipped; assume it.
			p.beginHeader(RoleAssistant)
		case stateContent:
			if id == TokenConstrain {
				return // meaningless inside content
			}
			// A channel inside content starts a new assistant message whose
			// "<|end|><|start|>assistant" was skipped.
			p.endMessage(false)
			p.beginHeader(RoleAssistant)
		}
		p.hdr = append(p.hdr, hdrPart{special: id})
	case TokenMessage:
		switch p.state {
		case stateExpectStart:
			p.beginHeader(RoleAssistant)
			p.startContent(p.parseHeader(false))
		case stateHeader:
			p.startContent(p.parseHeader(false))
		}
		// Inside content it is meaningless and dropped.
	case TokenEnd, TokenReturn, TokenCall, TokenEndOfText:
		switch p.state {
		case stateHeader:
			if p.headerAsMessage() {
				p.endMessage(false)
			}
		case stateContent:
			p.endMessage(false)
		}
		p.state = stateExpectStart
		switch id {
		case TokenReturn:
			p.emit(Stop{Reason: StopReturn})
		case TokenCall:
			p.emit(Stop{Reason: StopCall})
		case TokenEndOfText:
			p.emit(Stop{Reason: StopEOS})
		default:
			p.stopped = false
			return
		}
		p.stopped = true
		return
	default:
		return // reserved and unused specials carry nothing
	}
	p.stopped = false
}

func (p *Parser) text(piece string) {
	switch p.state {
	case stateExpectStart:
		if strings.TrimSpace(piece) == "" {
			return // whitespace between messages
		}
		// Text without <|start|>: parse it as a header; if it is prose, the
		// header gives up and it becomes content.
		p.beginHeader("")
		p.headerText(piece)
	case stateHeader:
		p.headerText(piece)
	case stateContent:
		p.appendContent(piece)
	}
	p.stopped = false
}

func (p *Parser) headerText(piece string) {
	if n := len(p.hdr); n > 0 && p.hdr[n-1].special == 0 {
		p.hdr[n-1].text = append(p.hdr[n-1].text, piece...)
	} else {
		p.hdr = append(p.hdr, hdrPart{text: []byte(piece)})
	}
	p.hdrBytes += len(piece)
	if p.hdrBytes > p.opts.MaxHeaderBytes || strings.Contains(piece, "\n") {
		// Headers are short single lines; this is content.
		p.headerAsMessage()
	}
}

// headerAsMessage turns an unfinished header into the start of a message,
// with the header's unrecognised text as content. It reports whether there
// was a header to convert.
func (p *Parser) headerAsMessage() bool {
	if len(p.hdr) == 0 {
		return false
	}
	h, leftover := p.parseHeader(true)
	p.startContent(h, leftover)
	return true
}

// parseHeader reads role, recipient, channel and content type from the
// header parts. The model may put "to=" before or after <|channel|>, glue
// <|constrain|> to the previous word, or write a plain "json" content type.
//
// In lenient mode (no <|message|> seen) the first word that is not header
// syntax starts the content, which is returned with its original spacing.
func (p *Parser) parseHeader(lenient bool) (Message, string) {
	h := Message{Role: p.hdrRole}
	needRole := h.Role == ""
	wantChannel, wantType := false, false
	var leftover strings.Builder
	inContent := false
	for _, part := range p.hdr {
		if part.special != 0 {
			if needRole {
				// The role word comes first; "<|start|><|channel|>…" has
				// none, so assume assistant.
				h.Role, needRole = RoleAssistant, false
			}
			if inContent {
				continue
			}
			switch part.special {
			case TokenChannel:
				wantChannel, wantType = true, false
			case TokenConstrain:
				wantChannel, wantType = false, true
				h.ContentType = ConstrainMarker
			}
			continue
		}
		text := strings.ToValidUTF8(string(part.text), "\uFFFD")
		if inContent {
			leftover.WriteString(text)
			continue
		}
		pos := 0
		for pos < len(text) {
			start, end := nextWord(text, pos)
			if start < 0 {
				break
			}
			pos = end
			w := text[start:end]
			switch {
			case wantChannel:
				h.Channel, wantChannel = w, false
			case wantType:
				h.ContentType, wantType = ConstrainMarker+w, false
			case needRole:
				needRole = false
				if role, name, ok := roleWord(w); ok {
					h.Role, h.Name = role, name
				} else if r, ok := strings.CutPrefix(w, "to="); ok {
					h.Role, h.Recipient = RoleAssistant, r
				} else if lenient {
					// Probably prose, not a role: the text is content.
					h.Role = RoleAssistant
					inContent = true
				} else {
					// An unknown author with a proper header is a tool,
					// e.g. "functions.get_weather to=assistant".
					h.Role, h.Name = RoleTool, w
				}
			case strings.HasPrefix(w, "to="):
				h.Recipient = w[len("to="):]
			case lenient:
				inContent = true
			case !strings.HasPrefix(h.ContentType, ConstrainMarker):
				h.ContentType = w
			}
			if inContent {
				leftover.WriteString(text[start:])
				break
			}
		}
	}
	if h.Role == "" {
		h.Role = RoleAssistant
	}
	return h, leftover.String()
}

// nextWord returns the bounds of the next whitespace-separated word of s at
// or after pos, or (-1, -1).
func nextWord(s string, pos int) (int, int) {
	start := -1
	for i, r := range s[pos:] {
		space := r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
		if start < 0 && !space {
			start = pos + i
		} else if start >= 0 && space {
			return start, pos + i
		}
	}
	if start < 0 {
		return -1, -1
	}
	return start, len(s)
}

// roleWord parses "role" or "role:name" for the known roles (any case).
func roleWord(w string) (Role, string, bool) {
	r, name, _ := strings.Cut(w, ":")
	role := Role(strings.ToLower(r))
	if !role.valid() || role == RoleTool {
		return "", "", false
	}
	return role, name, true
}

// route decides where a message's content goes.
func route(h Message) msgKind {
	if h.Role != RoleAssistant {
		return kindHidden
	}
	if r := h.Recipient; r != "" && r != "all" && r != "user" {
		return kindCall
	}
	if h.Channel == ChannelAnalysis {
		return kindReasoning
	}
	return kindContent
}

func (p *Parser) startContent(h Message, leftover string) {
	p.state = stateContent
	p.cur = h
	p.kind = route(h)
	p.content.Reset()
	p.pending = p.pending[:0]
	if p.kind == kindCall {
		n := p.nCalls
		p.nCalls++
		p.call = ToolCall{
			Index:       n,
			ID:          p.callID(n),
			Name:        strings.TrimPrefix(h.Recipient, FunctionsPrefix),
			Recipient:   h.Recipient,
			Channel:     h.Channel,
			ContentType: h.ContentType,
		}
	}
	p.emit(MessageStart{Header: h})
	if leftover != "" {
		p.appendContent(leftover)
	}
}

func (p *Parser) callID(n int) string {
	if p.opts.CallID != nil {
		return p.opts.CallID(n)
	}
	return "call_" + rand.Text()
}

func (p *Parser) appendContent(piece string) {
	p.deliver(p.completeUTF8(piece))
}

// deliver records complete text and emits it as the message's delta type.
func (p *Parser) deliver(text string) {
	if text == "" {
		return
	}
	p.content.WriteString(text)
	switch p.kind {
	case kindContent:
		p.emit(ContentDelta{Channel: p.cur.Channel, Text: text})
	case kindReasoning:
		p.emit(ReasoningDelta{Text: text})
	case kindCall:
		p.emit(ToolCallDelta{Index: p.call.Index, ID: p.call.ID, Name: p.call.Name, Arguments: text})
	}
}

// completeUTF8 returns the complete UTF-8 text available after adding piece:
// a trailing incomplete character waits in p.pending for the next token, and
// invalid bytes become U+FFFD (one per maximal invalid sequence).
func (p *Parser) completeUTF8(piece string) string {
	if len(p.pending) == 0 && utf8.ValidString(piece) {
		return piece
	}
	buf := append(p.pending, piece...)
	var sb strings.Builder
	last, i := 0, 0
	var tail []byte
	for i < len(buf) {
		if buf[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(buf[i:])
		if r != utf8.RuneError || size > 1 {
			i += size
			continue
		}
		if !utf8.FullRune(buf[i:]) {
			tail = buf[i:] // incomplete character: wait for more bytes
			break
		}
		k := 1
		for k < 3 && i+k < len(buf) && !utf8.FullRune(buf[i:i+k+1]) {
			k++
		}
		sb.Write(buf[last:i])
		sb.WriteString("\uFFFD")
		i += k
		last = i
	}
	end := len(buf) - len(tail)
	sb.Write(buf[last:end])
	// buf may alias p.pending, so copy the tail out before reusing it.
	p.pending = append([]byte(nil), tail...)
	return sb.String()
}

// endMessage flushes the current message and emits its final events.
func (p *Parser) endMessage(truncated bool) {
	if len(p.pending) > 0 {
		// An incomplete character at the end can never complete.
		p.pending = p.pending[:0]
		p.deliver("\uFFFD")
	}
	m := p.cur
	m.Content = p.content.String()
	if p.kind == kindCall {
		c := p.call
		c.Arguments = m.Content
		c.InvalidJSON = !json.Valid([]byte(c.Arguments))
		c.Truncated = truncated
		p.emit(c)
	}
	p.emit(MessageEnd{Message: m, Truncated: truncated})
	p.state = stateExpectStart
	p.cur = Message{}
	p.content.Reset()
}

// Result is a whole parsed completion.
type Result struct {
	// Messages are all parsed messages in order, including ones the
	// streaming events hide (non-assistant roles).
	Messages  []Message
	Reasoning string // all analysis text
	Content   string // all user-visible text
	ToolCalls []ToolCall
	// StopReason is the reason of the last Stop event.
	StopReason StopReason
}

// ParseCompletion parses a complete sequence of sampled ids with a fresh
// Parser (so, like the streaming case, it may start after
// "<|start|>assistant" or with <|start|>). vocab supplies each id's bytes;
// a nil vocab gives empty text.
func ParseCompletion(ids []int, vocab Vocab, opts ParserOptions) Result {
	p := NewParser(opts)
	var res Result
	var reasoning, content strings.Builder
	collect := func(evs []Event) {
		for _, e := range evs {
			switch e := e.(type) {
			case ReasoningDelta:
				reasoning.WriteString(e.Text)
			case ContentDelta:
				content.WriteString(e.Text)
			case ToolCall:
				res.ToolCalls = append(res.ToolCalls, e)
			case MessageEnd:
				res.Messages = append(res.Messages, e.Message)
			case Stop:
				res.StopReason = e.Reason
			}
		}
	}
	for _, id := range ids {
		piece := ""
		if vocab != nil && id >= 0 && id < FirstSpecialID {
			piece, _ = vocab.TokenString(id)
		}
		collect(p.Push(id, piece))
	}
	collect(p.Finish())
	res.Reasoning = reasoning.String()
	res.Content = content.String()
	return res
}
