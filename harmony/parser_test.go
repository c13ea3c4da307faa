package harmony

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// tok is one sampled token as the parser sees it.
type tok struct {
	id    int
	piece string
}

// ordinaryID stands in for any non-special id; the parser only looks at
// whether an id is special.
const ordinaryID = 1000

var specialRE = regexp.MustCompile(`<\|[a-z_0-9]+\|>`)

// script turns text with spelled-out specials into tokens, cutting ordinary
// text into chunk-byte pieces (so multi-byte characters get split).
func script(s string, chunk int) []tok {
	var out []tok
	addText := func(t string) {
		for len(t) > 0 {
			n := min(chunk, len(t))
			out = append(out, tok{ordinaryID, t[:n]})
			t = t[n:]
		}
	}
	last := 0
	for _, m := range specialRE.FindAllStringIndex(s, -1) {
		addText(s[last:m[0]])
		out = append(out, tok{specialID(s[m[0]:m[1]]), ""})
		last = m[1]
	}
	addText(s[last:])
	return out
}

func specialID(name string) int {
	for id := FirstSpecialID; id <= TokenCall; id++ {
		if SpecialName(id) == name {
			return id
		}
	}
	if n, ok := strings.CutPrefix(name, "<|reserved_"); ok {
		if id, err := strconv.Atoi(strings.TrimSuffix(n, "|>")); err == nil {
			return id
		}
	}
	panic("unknown special " + name)
}

func seqIDs(n int) func(int) string {
	return func(i int) string { return fmt.Sprintf("call_%d", i) }
}

// run feeds toks to a fresh parser and returns every event.
func run(toks []tok) []Event {
	p := NewParser(ParserOptions{CallID: seqIDs(0)})
	var evs []Event
	for _, t := range toks {
		evs = append(evs, p.Push(t.id, t.piece)...)
	}
	return append(evs, p.Finish()...)
}

// summary is what a table case checks.
type summary struct {
	Reasoning string
	Content   string
	Calls     []string // "name|args|contentType|invalid|truncated"
	Messages  []string // "role:name>recipient#channel ctype=…: content"
	Stop      StopReason
}

func summarize(evs []Event) summary {
	var s summary
	for _, e := range evs {
		switch e := e.(type) {
		case ReasoningDelta:
			s.Reasoning += e.Text
		case ContentDelta:
			s.Content += e.Text
		case ToolCall:
			s.Calls = append(s.Calls, fmt.Sprintf("%s|%s|%s|%v|%v", e.Name, e.Arguments, e.ContentType, e.InvalidJSON, e.Truncated))
		case MessageEnd:
			m := e.Message
			s.Messages = append(s.Messages, fmt.Sprintf("%s:%s>%s#%s ctype=%s: %s", m.Role, m.Name, m.Recipient, m.Channel, m.ContentType, m.Content))
		case Stop:
			s.Stop = e.Reason
		}
	}
	return s
}

// TestParserCases names every malformed (and the well-formed) output the
// parser must survive, each run with several token cuttings.
func TestParserCases(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want summary
	}{
		{"reasoning then final",
			"<|channel|>analysis<|message|>think<|end|><|start|>assistant<|channel|>final<|message|>Hello<|return|>",
			summary{Reasoning: "think", Content: "Hello", Stop: StopReturn, Messages: []string{
				"assistant:>#analysis ctype=: think", "assistant:>#final ctype=: Hello"}}},
		{"tool call, recipient after channel, spaced constrain",
			`<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}<|call|>`,
			summary{Calls: []string{`get_weather|{"city":"Paris"}|<|constrain|>json|false|false`}, Stop: StopCall, Messages: []string{
				`assistant:>functions.get_weather#commentary ctype=<|constrain|>json: {"city":"Paris"}`}}},
		{"tool call, recipient before channel",
			` to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>{}<|call|>`,
			summary{Calls: []string{`get_weather|{}|<|constrain|>json|false|false`}, Stop: StopCall, Messages: []string{
				`assistant:>functions.get_weather#commentary ctype=<|constrain|>json: {}`}}},
		{"constrain glued to recipient",
			`<|channel|>commentary to=functions.f<|constrain|>json<|message|>{"a":1}<|call|>`,
			summary{Calls: []string{`f|{"a":1}|<|constrain|>json|false|false`}, Stop: StopCall, Messages: []string{
				`assistant:>functions.f#commentary ctype=<|constrain|>json: {"a":1}`}}},
		{"constrain with space before type word",
			`<|channel|>commentary to=functions.f <|constrain|> json<|message|>{}<|call|>`,
			summary{Calls: []string{`f|{}|<|constrain|>json|false|false`}, Stop: StopCall, Messages: []string{
				`assistant:>functions.f#commentary ctype=<|constrain|>json: {}`}}},
		{"plain-text json content type (HF template form)",
			`<|start|>assistant to=functions.f<|channel|>commentary json<|message|>{}<|call|>`,
			summary{Calls: []string{`f|{}|json|false|false`}, Stop: StopCall, Messages: []string{
				`assistant:>functions.f#commentary ctype=json: {}`}}},
		{"built-in tool call on analysis is not reasoning",
			`<|channel|>analysis to=browser.search code<|message|>{"query":"x"}<|call|>`,
			summary{Calls: []string{`browser.search|{"query":"x"}|code|false|false`}, Stop: StopCall, Messages: []string{
				`assistant:>browser.search#analysis ctype=code: {"query":"x"}`}}},
		{"invalid JSON arguments are kept raw and flagged",
			`<|channel|>commentary to=functions.f <|constrain|>json<|message|>{oops<|call|>`,
			summary{Calls: []string{`f|{oops|<|constrain|>json|true|false`}, Stop: StopCall, Messages: []string{
				`assistant:>functions.f#commentary ctype=<|constrain|>json: {oops`}}},
		{"recipient all is content",
			`<|channel|>final to=all<|message|>hi<|return|>`,
			summary{Content: "hi", Stop: StopReturn, Messages: []string{"assistant:>all#final ctype=: hi"}}},
		{"missing channel is content",
			"<|message|>Hi<|end|>",
			summary{Content: "Hi", Stop: StopLength, Messages: []string{"assistant:># ctype=: Hi"}}},
		{"unknown channel is content",
			"<|channel|>weird<|message|>Hi<|return|>",
			summary{Content: "Hi", Stop: StopReturn, Messages: []string{"assistant:>#weird ctype=: Hi"}}},
		{"commentary preamble is content",
			"<|channel|>commentary<|message|>Let me check.<|end|>",
			summary{Content: "Let me check.", Stop: StopLength, Messages: []string{"assistant:>#commentary ctype=: Let me check."}}},
		{"no header at all: plain text",
			"Hello world<|return|>",
			summary{Content: "Hello world", Stop: StopReturn, Messages: []string{"assistant:># ctype=: Hello world"}}},
		{"header that turns into prose at a newline",
			"<|channel|>final The answer\nis 4<|return|>",
			summary{Content: "The answer\nis 4", Stop: StopReturn, Messages: []string{"assistant:>#final ctype=: The answer\nis 4"}}},
		{"header without <|message|> ended by <|end|>",
			"<|channel|>commentary Hello<|end|>",
			summary{Content: "Hello", Stop: StopLength, Messages: []string{"assistant:>#commentary ctype=: Hello"}}},
		{"text between messages without <|start|>",
			"<|channel|>final<|message|>A<|end|>stray<|start|>assistant<|channel|>final<|message|>B<|return|>",
			summary{Content: "AstrayB", Stop: StopReturn, Messages: []string{
				"assistant:>#final ctype=: A", "assistant:># ctype=: stray", "assistant:>#final ctype=: B"}}},
		{"whitespace between messages is ignored",
			"<|channel|>final<|message|>A<|end|>\n <|start|>assistant<|channel|>final<|message|>B<|return|>",
			summary{Content: "AB", Stop: StopReturn, Messages: []string{"assistant:>#final ctype=: A", "assistant:>#final ctype=: B"}}},
		{"<|start|> mid-content ends the message",
			"<|channel|>final<|message|>A<|start|>assistant<|channel|>final<|message|>B<|return|>",
			summary{Content: "AB", Stop: StopReturn, Messages: []string{"assistant:>#final ctype=: A", "assistant:>#final ctype=: B"}}},
		{"<|channel|> mid-content starts a new assistant message",
			"<|channel|>analysis<|message|>think<|channel|>final<|message|>ans<|return|>",
			summary{Reasoning: "think", Content: "ans", Stop: StopReturn, Messages: []string{
				"assistant:>#analysis ctype=: think", "assistant:>#final ctype=: ans"}}},
		{"<|message|> and <|constrain|> inside content are dropped",
			"<|channel|>final<|message|>a<|message|>b<|constrain|>c<|return|>",
			summary{Content: "abc", Stop: StopReturn, Messages: []string{"assistant:>#final ctype=: abc"}}},
		{"reserved specials are ignored",
			"<|channel|>final<|message|>a<|reserved_200014|>b<|startoftext|>c<|return|>",
			summary{Content: "abc", Stop: StopReturn, Messages: []string{"assistant:>#final ctype=: abc"}}},
		{"<|channel|> without <|start|> between messages",
			"<|channel|>analysis<|message|>t<|end|><|channel|>final<|message|>a<|return|>",
			summary{Reasoning: "t", Content: "a", Stop: StopReturn, Messages: []string{
				"assistant:>#analysis ctype=: t", "assistant:>#final ctype=: a"}}},
		{"<|message|> without <|start|> between messages",
			"<|channel|>analysis<|message|>t<|end|><|message|>a<|return|>",
			summary{Reasoning: "t", Content: "a", Stop: StopReturn, Messages: []string{
				"assistant:>#analysis ctype=: t", "assistant:># ctype=: a"}}},
		{"stream that starts with <|start|>",
			"<|start|>assistant<|channel|>final<|message|>x<|return|>",
			summary{Content: "x", Stop: StopReturn, Messages: []string{"assistant:>#final ctype=: x"}}},
		{"role word in other case",
			"<|start|>Assistant<|channel|>final<|message|>x<|return|>",
			summary{Content: "x", Stop: StopReturn, Messages: []string{"assistant:>#final ctype=: x"}}},
		{"<|start|> followed directly by <|channel|>",
			"<|start|><|channel|>final<|message|>x<|return|>",
			summary{Content: "x", Stop: StopReturn, Messages: []string{"assistant:>#final ctype=: x"}}},
		{"hallucinated user turn is not content",
			"<|channel|>final<|message|>A<|end|><|start|>user<|message|>fake<|end|>",
			summary{Content: "A", Stop: StopLength, Messages: []string{"assistant:>#final ctype=: A", "user:># ctype=: fake"}}},
		{"hallucinated tool output is not content",
			`<|start|>functions.f to=assistant<|channel|>commentary<|message|>{"t":1}<|end|>`,
			summary{Stop: StopLength, Messages: []string{`tool:functions.f>assistant#commentary ctype=: {"t":1}`}}},
		{"truncated content",
			"<|channel|>final<|message|>Hel",
			summary{Content: "Hel", Stop: StopLength, Messages: []string{"assistant:>#final ctype=: Hel"}}},
		{"truncated header",
			"<|channel|>fin",
			summary{Stop: StopLength, Messages: []string{"assistant:>#fin ctype=: "}}},
		{"truncated tool call",
			`<|channel|>commentary to=functions.f <|constrain|>json<|message|>{"a":`,
			summary{Calls: []string{`f|{"a":|<|constrain|>json|true|true`}, Stop: StopLength, Messages: []string{
				`assistant:>functions.f#commentary ctype=<|constrain|>json: {"a":`}}},
		{"header-only tool call ended by <|call|>",
			`<|channel|>commentary to=functions.get_location<|call|>`,
			summary{Calls: []string{`get_location|||true|false`}, Stop: StopCall, Messages: []string{
				`assistant:>functions.get_location#commentary ctype=: `}}},
		{"endoftext", "<|channel|>final<|message|>x<|endoftext|>",
			summary{Content: "x", Stop: StopEOS, Messages: []string{"assistant:>#final ctype=: x"}}},
		{"empty completion", "", summary{Stop: StopLength}},
		{"immediate stop", "<|return|>", summary{Stop: StopReturn}},
		{"tokens after a stop are still parsed",
			"<|channel|>analysis<|message|>a<|return|><|start|>assistant<|channel|>final<|message|>b",
			summary{Reasoning: "a", Content: "b", Stop: StopLength, Messages: []string{
				"assistant:>#analysis ctype=: a", "assistant:>#final ctype=: b"}}},
		{"multi-byte characters",
			"<|channel|>analysis<|message|>héllo 💖 世界<|end|><|start|>assistant<|channel|>final<|message|>ok 💖<|return|>",
			summary{Reasoning: "héllo 💖 世界", Content: "ok 💖", Stop: StopReturn, Messages: []string{
				"assistant:>#analysis ctype=: héllo 💖 世界", "assistant:>#final ctype=: ok 💖"}}},
		{"invalid UTF-8 becomes U+FFFD",
			"<|channel|>final<|message|>a\xffb\xe2\x82c<|return|>",
			summary{Content: "a\uFFFDb\uFFFDc", Stop: StopReturn, Messages: []string{"assistant:>#final ctype=: a\uFFFDb\uFFFDc"}}},
		{"incomplete UTF-8 does not leak into the next message",
			"<|start|>assistant<|message|>\xe2\x82<|end|><|start|>assistant<|message|>Hi<|end|>",
			summary{Content: "\uFFFDHi", Stop: StopLength, Messages: []string{"assistant:># ctype=: \uFFFD", "assistant:># ctype=: Hi"}}},
		{"harmony test_streamable_parser",
			"", // filled from the fixture below
			summary{}},
	}
	for _, tc := range cases {
		if tc.name == "harmony test_streamable_parser" {
			tc.in = fixture(t, "test_streamable_parser.txt")
			tc.want = summary{
				Reasoning: "User asks \"Who is the current US president?\" It's 2025, presumably current president is Joe Biden? Actually as of 2025-07-28, there was a 2024 election. In 2024, President is probably President Biden still? But w\ne need up to date info. Let's browse to confirm.",
				Calls:     []string{`browser.search|{"query": "current US president July 2025", "topn": 10, "source": "news"}|code|false|false`},
				Stop:      StopLength,
			}
		}
		for _, chunk := range []int{1, 2, 3, 1000} {
			t.Run(fmt.Sprintf("%s/chunk%d", tc.name, chunk), func(t *testing.T) {
				got := summarize(run(script(tc.in, chunk)))
				if tc.name == "harmony test_streamable_parser" {
					if len(got.Messages) != 3 {
						t.Errorf("got %d messages, want 3: %q", len(got.Messages), got.Messages)
					}
					got.Messages = nil
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("\n got %#v\nwant %#v", got, tc.want)
				}
			})
		}
	}
}

// TestToolResponseParsing is harmony's test_tool_response_parsing: a tool's
// output message parses back into role tool, name, recipient and channel.
func TestToolResponseParsing(t *testing.T) {
	got := summarize(run(script(fixture(t, "test_tool_response_parsing.txt"), 4)))
	want := []string{`tool:browser.search>assistant#commentary ctype=: {"result": "https://openai.com/"}`}
	if !reflect.DeepEqual(got.Messages, want) || got.Content != "" {
		t.Errorf("got %#v", got)
	}
}

func TestEventOrder(t *testing.T) {
	evs := run(script("<|channel|>analysis<|message|>ab<|end|><|start|>assistant<|channel|>commentary to=functions.f <|constrain|>json<|message|>{}<|call|>", 1))
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, strings.TrimPrefix(fmt.Sprintf("%T", e), "harmony."))
	}
	want := []string{
		"MessageStart", "ReasoningDelta", "ReasoningDelta", "MessageEnd",
		"MessageStart", "ToolCallDelta", "ToolCallDelta", "ToolCall", "MessageEnd", "Stop",
	}
	if !reflect.DeepEqual(kinds, want) {
		t.Fatalf("events %v\nwant %v", kinds, want)
	}
	start := evs[4].(MessageStart)
	if start.Header.Recipient != "functions.f" || start.Header.Channel != "commentary" {
		t.Errorf("header %+v", start.Header)
	}
	d := evs[5].(ToolCallDelta)
	c := evs[7].(ToolCall)
	if d.ID != "call_0" || d.Name != "f" || c.ID != "call_0" || c.Index != 0 {
		t.Errorf("delta %+v call %+v", d, c)
	}
}

func TestCallIDs(t *testing.T) {
	in := "<|channel|>commentary to=functions.a<|message|>{}<|end|><|start|>assistant<|channel|>commentary to=functions.b<|message|>{}<|call|>"
	var ids []string
	for _, e := range run(script(in, 5)) {
		if c, ok := e.(ToolCall); ok {
			ids = append(ids, fmt.Sprintf("%d:%s:%s", c.Index, c.ID, c.Name))
		}
	}
	if want := []string{"0:call_0:a", "1:call_1:b"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("got %v want %v", ids, want)
	}
	// The default ids are random, prefixed and distinct.
	p := NewParser(ParserOptions{})
	var got []string
	for _, tk := range script(in, 5) {
		for _, e := range p.Push(tk.id, tk.piece) {
			if c, ok := e.(ToolCall); ok {
				got = append(got, c.ID)
			}
		}
	}
	if len(got) != 2 || got[0] == got[1] || !strings.HasPrefix(got[0], "call_") || len(got[0]) < 15 {
		t.Errorf("default ids %q", got)
	}
}

// TestWaitsForMultiTokenCharacter mirrors harmony's
// test_streamable_parser_waits_for_multi_token_utf8_sequence.
func TestWaitsForMultiTokenCharacter(t *testing.T) {
	p := NewParser(ParserOptions{})
	for _, tk := range script("<|channel|>final<|message|>", 100) {
		p.Push(tk.id, tk.piece)
	}
	heart := "💖"
	if evs := p.Push(ordinaryID, heart[:2]); len(evs) != 0 {
		t.Fatalf("half a character produced %v", evs)
	}
	evs := p.Push(ordinaryID, heart[2:])
	if len(evs) != 1 || evs[0] != (ContentDelta{Channel: "final", Text: heart}) {
		t.Fatalf("got %v", evs)
	}
}

func TestFinishAfterStopAddsNothing(t *testing.T) {
	p := NewParser(ParserOptions{})
	for _, tk := range script("<|channel|>final<|message|>x<|return|>", 100) {
		p.Push(tk.id, tk.piece)
	}
	if evs := p.Finish(); len(evs) != 0 {
		t.Errorf("Finish after <|return|> gave %v", evs)
	}
}

func TestMaxHeaderBytes(t *testing.T) {
	long := strings.Repeat("x", 40)
	p := NewParser(ParserOptions{MaxHeaderBytes: 32})
	var evs []Event
	for _, tk := range script("<|channel|>final "+long+"<|return|>", 4) {
		evs = append(evs, p.Push(tk.id, tk.piece)...)
	}
	s := summarize(evs)
	if s.Content != long {
		t.Errorf("content %q, want the long header text", s.Content)
	}
	// Content is streamed as soon as the header gives up, not at the end.
	firstDelta := -1
	for i, e := range evs {
		if _, ok := e.(ContentDelta); ok {
			firstDelta = i
			break
		}
	}
	if firstDelta < 0 || firstDelta == len(evs)-3 {
		t.Errorf("content not streamed early: %v", evs)
	}
}

// fakeVocab maps ids to bytes for ParseCompletion tests.
type fakeVocab map[int]string

func (v fakeVocab) TokenString(id int) (string, bool) {
	s, ok := v[id]
	return s, ok
}

func TestParseCompletion(t *testing.T) {
	vocab := fakeVocab{1: "Hel", 2: "lo", 3: "final", 4: "think", 5: "\xf0\x9f", 6: "\x92\x96"}
	ids := []int{TokenChannel, 4 /* "think" as a channel word is unknown */, TokenMessage, 1, 2, TokenEnd,
		TokenStart, TokenChannel, 3, TokenMessage, 1, 5, 6, 99 /* unknown id: no text */, TokenReturn}
	res := ParseCompletion(ids, vocab, ParserOptions{})
	if res.Content != "HelloHel💖" || res.Reasoning != "" || res.StopReason != StopReturn || len(res.Messages) != 2 {
		t.Errorf("got %+v", res)
	}
	if res.Messages[0].Channel != "think" || res.Messages[1].Channel != "final" {
		t.Errorf("channels %+v", res.Messages)
	}
	if r := ParseCompletion(ids, nil, ParserOptions{}); r.StopReason != StopReturn || r.Content != "" {
		t.Errorf("nil vocab: %+v", r)
	}
	call := ParseCompletion([]int{TokenChannel, 3, TokenMessage, 1, TokenEnd, TokenStart, TokenCall}, vocab, ParserOptions{})
	if call.StopReason != StopCall {
		t.Errorf("got %+v", call)
	}
}

// checkEvents verifies the parser's invariants on an event stream.
func checkEvents(t *testing.T, evs []Event) {
	t.Helper()
	var visible strings.Builder
	var msg strings.Builder
	var args = map[int]string{}
	open := false
	stopped := false
	for i, e := range evs {
		switch e := e.(type) {
		case MessageStart:
			if open {
				t.Fatalf("event %d: MessageStart inside a message", i)
			}
			open = true
			msg.Reset()
		case ReasoningDelta:
			if !utf8.ValidString(e.Text) || e.Text == "" {
				t.Fatalf("event %d: bad reasoning delta %q", i, e.Text)
			}
			visible.WriteString(e.Text)
			msg.WriteString(e.Text)
		case ContentDelta:
			if !utf8.ValidString(e.Text) || e.Text == "" {
				t.Fatalf("event %d: bad content delta %q", i, e.Text)
			}
			visible.WriteString(e.Text)
			msg.WriteString(e.Text)
		case ToolCallDelta:
			if !utf8.ValidString(e.Arguments) {
				t.Fatalf("event %d: bad arguments delta %q", i, e.Arguments)
			}
			args[e.Index] += e.Arguments
			msg.WriteString(e.Arguments)
		case ToolCall:
			if args[e.Index] != e.Arguments {
				t.Fatalf("event %d: arguments %q, deltas gave %q", i, e.Arguments, args[e.Index])
			}
		case MessageEnd:
			if !open {
				t.Fatalf("event %d: MessageEnd without MessageStart", i)
			}
			open = false
			if !utf8.ValidString(e.Message.Content) {
				t.Fatalf("event %d: invalid UTF-8 content", i)
			}
			if route(e.Message) != kindHidden && msg.String() != e.Message.Content {
				t.Fatalf("event %d: content %q, deltas gave %q", i, e.Message.Content, msg.String())
			}
		case Stop:
			switch e.Reason {
			case StopReturn, StopCall, StopEOS, StopLength:
			default:
				t.Fatalf("event %d: stop reason %q", i, e.Reason)
			}
			stopped = true
		}
	}
	if open {
		t.Fatal("message left open after Finish")
	}
	if !stopped {
		t.Fatal("no Stop event")
	}
	if !utf8.ValidString(visible.String()) {
		t.Fatal("concatenated deltas are not valid UTF-8")
	}
}

// fuzzSpecials are the ids the fuzzer injects.
var fuzzSpecials = []int{TokenStart, TokenEnd, TokenMessage, TokenChannel, TokenConstrain,
	TokenReturn, TokenCall, TokenEndOfText, 200014, TokenStartOfText, -1, TokenStart, TokenMessage, TokenChannel, TokenEnd, TokenCall}

// fuzzTokens decodes fuzz input: a byte ≥ 0xF0 is a special, any other byte
// b starts a text piece of the next 1+b%4 bytes (arbitrary, often invalid
// or partial UTF-8).
func fuzzTokens(data []byte) []tok {
	var out []tok
	for i := 0; i < len(data); {
		b := data[i]
		i++
		if b >= 0xF0 {
			out = append(out, tok{fuzzSpecials[b&0x0F], ""})
			continue
		}
		n := min(1+int(b)%4, len(data)-i)
		out = append(out, tok{ordinaryID, string(data[i : i+n])})
		i += n
	}
	return out
}

func TestInvariantsOnCases(t *testing.T) {
	for _, s := range []string{
		"<|channel|>analysis<|message|>a\xe2<|channel|>final<|message|>\x82\xacb<|return|>",
		"x\xf0\x9f<|start|>\x92\x96<|message|>\xff",
		"<|channel|>commentary to=functions.f<|message|>{\xe2\x82<|call|>",
	} {
		for _, chunk := range []int{1, 2, 7} {
			checkEvents(t, run(script(s, chunk)))
		}
	}
}

// FuzzParser checks that no token sequence makes the parser panic or emit
// incomplete UTF-8, and that deltas add up to the reported messages.
func FuzzParser(f *testing.F) {
	f.Add([]byte("\x03<|c\xf3\x01an\xf5\x02ana\x00l\xf2\x02hi!\xf1"))
	f.Add([]byte{0xf3, 0x03, 'f', 'i', 'n', 'a', 0xf2, 0x01, 0xe2, 0x82, 0x00, 0xac, 0xf5})
	f.Add([]byte{0x00, 'x', 0xf0, 0xf3, 0x00, 'c', 0xf2, 0x01, 0xf0, 0x9f, 0x01, 0x92, 0x96, 0xf6})
	f.Add([]byte{0x03, ' ', 't', 'o', '=', 0xf4, 0x02, 'j', 's', 'o', 0xf2, 0x00, '{', 0xf7})
	f.Add([]byte("\x03\n\n\n\x01\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs := run(fuzzTokens(data))
		checkEvents(t, evs)
	})
}
