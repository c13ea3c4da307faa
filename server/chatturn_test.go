package server

import (
	"strings"
	"testing"

	"github.com/gptoss/gptoss/engine"
	"github.com/gptoss/gptoss/tokenizer"
)

// feed runs model output written in harmony text through a chat turn, one
// token at a time, each with a made-up log-prob.
func feed(t *testing.T, turn *chatTurn, output string) {
	t.Helper()
	for i, id := range turn.s.tok.EncodeWithSpecials(output) {
		if !turn.token(engine.Token{ID: int32(id), Logprob: -float32(i)}) {
			break
		}
	}
	turn.finish()
}

func turnServer(t *testing.T) *Server {
	tok, err := tokenizer.Default()
	if err != nil {
		t.Fatal(err)
	}
	return &Server{tok: tok}
}

func TestChatTurnReasoningAndAnswer(t *testing.T) {
	s := turnServer(t)
	var streamed []string
	turn := newChatTurn(s, true, nil, func(d chatRespMsg, lp *chatLogprobs) {
		if d.Content != nil {
			streamed = append(streamed, *d.Content)
		}
	})
	feed(t, turn, "<|channel|>analysis<|message|>User says hi.<|end|><|start|>assistant<|channel|>final<|message|>Hello there, friend.<|return|>")
	m := turn.message()
	if *m.Reasoning != "User says hi." || *m.ReasoningContent != *m.Reasoning || *m.Content != "Hello there, friend." {
		t.Fatalf("message %+v", m)
	}
	if strings.Join(streamed, "") != *m.Content {
		t.Fatalf("streamed %q", streamed)
	}
	// Log-probs: exactly the content tokens, none from headers or reasoning.
	var spelled string
	for _, lp := range turn.lps {
		spelled += lp.Token
	}
	if spelled != "Hello there, friend." {
		t.Fatalf("log-prob tokens spell %q", spelled)
	}
}

func TestChatTurnToolCall(t *testing.T) {
	s := turnServer(t)
	var deltas []chatToolCall
	turn := newChatTurn(s, false, nil, func(d chatRespMsg, _ *chatLogprobs) { deltas = append(deltas, d.ToolCalls...) })
	feed(t, turn, `<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}<|call|>`)
	m := turn.message()
	if m.Content != nil || len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Name != "get_weather" || m.ToolCalls[0].Function.Arguments != `{"city":"Paris"}` {
		t.Fatalf("message %+v", m)
	}
	var args string
	for i, d := range deltas {
		if (i == 0) != (d.ID != "") || *d.Index != 0 {
			t.Fatalf("delta %d %+v: only the first carries the id", i, d)
		}
		args += d.Function.Arguments
	}
	if args != `{"city":"Paris"}` || deltas[0].Function.Name != "get_weather" {
		t.Fatalf("streamed arguments %q", args)
	}
}

func TestChatTurnStopString(t *testing.T) {
	s := turnServer(t)
	turn := newChatTurn(s, false, []string{"friend"}, nil)
	feed(t, turn, "<|channel|>final<|message|>Hello there, friend. Bye.<|return|>")
	if m := turn.message(); *m.Content != "Hello there, " || !turn.stopped {
		t.Fatalf("content %q, stopped %v", *m.Content, turn.stopped)
	}
}
