package server

import (
	"slices"
	"strings"

	"github.com/gptoss/gptoss/engine"
	"github.com/gptoss/gptoss/harmony"
)

// chatTurn turns one generated assistant turn into the chat API's message:
// the harmony parser's events become reasoning, content and tool calls,
// streamed through send as they arrive when send is set.
type chatTurn struct {
	s        *Server
	logprobs bool
	send     func(delta chatRespMsg, lp *chatLogprobs)
	parser   *harmony.Parser
	stop     stopMatcher

	reasoning, content strings.Builder
	calls              []harmony.ToolCall
	started            map[int]bool // tool calls whose first stream delta went out
	lps                []chatLogprob
	// queued log-probs wait until the parser says what their tokens
	// became: content (attached to that delta), or headers, reasoning and
	// tool calls (dropped). The parser may hold text back across tokens.
	queued  []chatLogprob
	stopped bool // a stop string matched
}

func newChatTurn(s *Server, logprobs bool, stops []string, send func(chatRespMsg, *chatLogprobs)) *chatTurn {
	return &chatTurn{s: s, logprobs: logprobs, send: send, parser: harmony.NewParser(harmony.ParserOptions{}),
		stop: stopMatcher{stops: stops}, started: map[int]bool{}}
}

// token consumes one sampled token; false means a stop string matched.
func (t *chatTurn) token(tok engine.Token) bool {
	piece, _ := t.s.tok.TokenString(int(tok.ID))
	if t.logprobs && !t.s.tok.IsSpecial(int(tok.ID)) {
		t.queued = append(t.queued, t.s.chatLogprob(tok))
	}
	return t.events(t.parser.Push(int(tok.ID), piece))
}

// finish flushes what the parser and the stop matcher still hold.
func (t *chatTurn) finish() {
	if t.stopped || !t.events(t.parser.Finish()) {
		return
	}
	if tail := t.stop.flush(); tail != "" {
		t.content.WriteString(tail)
		if t.send != nil {
			t.send(chatRespMsg{Content: &tail}, nil)
		}
	}
}

func (t *chatTurn) events(evs []harmony.Event) bool {
	for _, ev := range evs {
		switch ev := ev.(type) {
		case harmony.ReasoningDelta:
			t.queued = t.queued[:0]
			t.reasoning.WriteString(ev.Text)
			if t.send != nil {
				text := ev.Text
				t.send(chatRespMsg{Reasoning: &text, ReasoningContent: &text}, nil)
			}
		case harmony.ContentDelta:
			text, stopped := t.stop.push(ev.Text)
			t.content.WriteString(text)
			var lp *chatLogprobs
			if len(t.queued) > 0 {
				t.lps = append(t.lps, t.queued...)
				lp = &chatLogprobs{Content: slices.Clone(t.queued)}
				t.queued = t.queued[:0]
			}
			if t.send != nil && (text != "" || lp != nil) {
				t.send(chatRespMsg{Content: &text}, lp)
			}
			if stopped {
				t.stopped = true
				return false
			}
		case harmony.ToolCallDelta:
			t.queued = t.queued[:0]
			if t.send != nil {
				i := ev.Index
				call := chatToolCall{Index: &i}
				if !t.started[ev.Index] {
					call.ID, call.Type, call.Function.Name = ev.ID, "function", ev.Name
				}
				call.Function.Arguments = ev.Arguments
				t.send(chatRespMsg{ToolCalls: []chatToolCall{call}}, nil)
			}
			t.started[ev.Index] = true
		case harmony.ToolCall:
			t.calls = append(t.calls, ev)
		case harmony.MessageStart:
			// A header that names a channel was made of the queued tokens;
			// without one the parser recovered the text as content, and the
			// tokens stay queued for it.
			if ev.Header.Channel != "" {
				t.queued = t.queued[:0]
			}
		case harmony.MessageEnd, harmony.Stop:
			t.queued = t.queued[:0]
		}
	}
	return true
}

// message is the whole turn as a non-streamed chat message.
func (t *chatTurn) message() *chatRespMsg {
	msg := &chatRespMsg{Role: "assistant"}
	content := t.content.String()
	if content != "" || len(t.calls) == 0 {
		msg.Content = &content
	}
	if rs := t.reasoning.String(); rs != "" {
		msg.Reasoning, msg.ReasoningContent = &rs, &rs
	}
	for _, c := range t.calls {
		call := chatToolCall{ID: c.ID, Type: "function"}
		call.Function.Name, call.Function.Arguments = c.Name, c.Arguments
		msg.ToolCalls = append(msg.ToolCalls, call)
	}
	return msg
}
