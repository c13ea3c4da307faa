package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gptoss/gptoss/engine"
	"github.com/gptoss/gptoss/harmony"
)

type chatRequest struct {
	Model    string        `json:"model"`
	Messages []chatMessage `json:"messages"`
	samplingParams
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Stream              bool            `json:"stream"`
	StreamOptions       *streamOptions  `json:"stream_options"`
	Tools               []chatTool      `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	ReasoningEffort     string          `json:"reasoning_effort"`
	Reasoning           *struct {
		Effort string `json:"effort"`
	} `json:"reasoning"`
	Logprobs    bool `json:"logprobs"`
	TopLogprobs *int `json:"top_logprobs"`
}

type chatMessage struct {
	Role             string          `json:"role"`
	Content          json.RawMessage `json:"content"`
	Name             string          `json:"name,omitempty"`
	ToolCalls        []chatToolCall  `json:"tool_calls,omitempty"`
	ToolCallID       string          `json:"tool_call_id,omitempty"`
	Reasoning        *string         `json:"reasoning,omitempty"`
	ReasoningContent *string         `json:"reasoning_content,omitempty"`
}

type chatTool struct {
	Type     string       `json:"type"`
	Function functionTool `json:"function"`
}

type chatToolCall struct {
	Index    *int   `json:"index,omitempty"` // stream deltas only
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// text returns a message's content: a string, or the text parts of an
// array of content parts.
func (m chatMessage) text(i int) (string, *apiError) {
	param := fmt.Sprintf("messages[%d].content", i)
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return "", invalidRequest(param, "%s must be a string or an array of content parts", param)
	}
	var sb strings.Builder
	for _, p := range parts {
		switch p.Type {
		case "text", "input_text", "output_text":
			sb.WriteString(p.Text)
		default:
			return "", invalidRequest(param, "content part type %q is not supported: this model reads text only", p.Type)
		}
	}
	return sb.String(), nil
}

// conversation turns chat messages into harmony messages: system and
// developer text become the developer instructions, assistant reasoning the
// analysis channel, tool calls and tool results harmony's function messages.
func (req *chatRequest) conversation() (*conversation, toolChoice, *apiError) {
	c := &conversation{}
	effort := req.ReasoningEffort
	if effort == "" && req.Reasoning != nil {
		effort = req.Reasoning.Effort
	}
	var aerr *apiError
	if c.effort, aerr = parseEffort(effort, "reasoning_effort"); aerr != nil {
		return nil, toolChoice{}, aerr
	}
	for i, t := range req.Tools {
		if t.Type != "function" {
			return nil, toolChoice{}, invalidRequest(fmt.Sprintf("tools[%d].type", i), "tool type %q is not supported; use \"function\"", t.Type)
		}
		td, aerr := t.Function.harmony(fmt.Sprintf("tools[%d].function", i))
		if aerr != nil {
			return nil, toolChoice{}, aerr
		}
		c.tools = append(c.tools, td)
	}
	tc, aerr := parseToolChoice(req.ToolChoice, c.tools)
	if aerr != nil {
		return nil, tc, aerr
	}
	if tc.mode == "none" {
		c.tools = nil // the model is not told about tools it may not call
	}
	if len(req.Messages) == 0 {
		return nil, tc, invalidRequest("messages", "'messages' must hold at least one message")
	}
	callNames := map[string]string{} // tool_call_id → function name
	for i, m := range req.Messages {
		text, aerr := m.text(i)
		if aerr != nil {
			return nil, tc, aerr
		}
		switch m.Role {
		case "system", "developer":
			if text != "" {
				c.instructions = append(c.instructions, text)
			}
		case "user":
			c.msgs = append(c.msgs, harmony.UserMessage(text))
		case "assistant":
			reasoning := m.ReasoningContent
			if m.Reasoning != nil {
				reasoning = m.Reasoning
			}
			if reasoning != nil && *reasoning != "" {
				c.msgs = append(c.msgs, harmony.AssistantMessage(harmony.ChannelAnalysis, *reasoning))
			}
			if text != "" {
				channel := harmony.ChannelFinal
				if len(m.ToolCalls) > 0 {
					channel = harmony.ChannelCommentary // a preamble before the calls
				}
				c.msgs = append(c.msgs, harmony.AssistantMessage(channel, text))
			}
			for _, call := range m.ToolCalls {
				callNames[call.ID] = call.Function.Name
				c.msgs = append(c.msgs, harmony.FunctionCall(call.Function.Name, call.Function.Arguments))
			}
		case "tool":
			name := m.Name
			if n, ok := callNames[m.ToolCallID]; ok {
				name = n
			}
			if name == "" {
				return nil, tc, invalidRequest(fmt.Sprintf("messages[%d].tool_call_id", i), "tool message %d answers no earlier tool call (tool_call_id %q)", i, m.ToolCallID)
			}
			c.msgs = append(c.msgs, harmony.FunctionResult(name, text))
		case "":
			return nil, tc, invalidRequest(fmt.Sprintf("messages[%d].role", i), "messages[%d] has no role", i)
		default:
			return nil, tc, invalidRequest(fmt.Sprintf("messages[%d].role", i), "unknown role %q", m.Role)
		}
	}
	return c, tc, nil
}

type chatChoice struct {
	Index        int           `json:"index"`
	Message      *chatRespMsg  `json:"message,omitempty"`
	Delta        *chatRespMsg  `json:"delta,omitempty"`
	Logprobs     *chatLogprobs `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

type chatRespMsg struct {
	Role             string         `json:"role,omitempty"`
	Content          *string        `json:"content,omitempty"`
	Reasoning        *string        `json:"reasoning,omitempty"`
	ReasoningContent *string        `json:"reasoning_content,omitempty"`
	ToolCalls        []chatToolCall `json:"tool_calls,omitempty"`
}

type chatLogprob struct {
	Token       string        `json:"token"`
	Logprob     float32       `json:"logprob"`
	Bytes       []int         `json:"bytes"`
	TopLogprobs []chatLogprob `json:"top_logprobs,omitempty"`
}

type chatLogprobs struct {
	Content []chatLogprob `json:"content"`
}

type chatResponse struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint,omitempty"`
	Choices           []chatChoice `json:"choices"`
	Usage             *usage       `json:"usage,omitempty"`
}

func (s *Server) chatLogprob(tok engine.Token) chatLogprob {
	lp := chatLogprob{Token: s.tokenText(tok.ID), Logprob: tok.Logprob, Bytes: byteInts(s.tok.TokenBytes(int(tok.ID)))}
	lp.TopLogprobs = []chatLogprob{}
	for _, t := range tok.Top {
		lp.TopLogprobs = append(lp.TopLogprobs, chatLogprob{Token: s.tokenText(t.ID), Logprob: t.Logprob, Bytes: byteInts(s.tok.TokenBytes(int(t.ID)))})
	}
	return lp
}

func byteInts(b []byte) []int {
	out := make([]int, len(b))
	for i, v := range b {
		out[i] = int(v)
	}
	return out
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) *apiError {
	start := time.Now()
	var req chatRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.checkModel(req.Model); err != nil {
		return err
	}
	conv, tc, aerr := req.conversation()
	if aerr != nil {
		return aerr
	}
	prompt, aerr := conv.prompt(s)
	if aerr != nil {
		return aerr
	}
	samp, aerr := req.sampling()
	if aerr != nil {
		return aerr
	}
	if req.Logprobs || req.TopLogprobs != nil {
		samp.Logprobs = true
		if req.TopLogprobs != nil {
			samp.TopLogprobs = *req.TopLogprobs
		}
	}
	limit, param := req.MaxCompletionTokens, "max_completion_tokens"
	if limit == nil {
		limit, param = req.MaxTokens, "max_tokens"
	}
	maxTok, aerr := s.maxTokens(limit, len(prompt), param)
	if aerr != nil {
		return aerr
	}
	ereq := engine.Request{Prompt: prompt, MaxTokens: maxTok, Sampling: samp, StopTokens: req.stopTokens(s.cfg.AssistantStops), MinTokens: req.MinTokens}
	if tc.mode == "required" || tc.mode == "function" {
		ereq.Constraint = newToolCallConstraint(s.tok, tc.allowed(conv.tools), s.mcfg.VocabSize, maxTok)
	}

	id, created := newID("chatcmpl-"), time.Now().Unix()
	chunk := func(delta chatRespMsg, lp *chatLogprobs, finish *string) chatResponse {
		return chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: s.cfg.ModelName,
			Choices: []chatChoice{{Delta: &delta, Logprobs: lp, FinishReason: finish}}}
	}
	var out *sse
	if req.Stream {
		out = newSSE(w)
		empty := ""
		out.data(chunk(chatRespMsg{Role: "assistant", Content: &empty}, nil, nil))
	}
	var send func(chatRespMsg, *chatLogprobs)
	if out != nil {
		send = func(d chatRespMsg, lp *chatLogprobs) { out.data(chunk(d, lp, nil)) }
	}
	turn := newChatTurn(s, samp.Logprobs, req.Stop, send)
	g, aerr := s.generate(r.Context(), start, ereq, turn.token)
	if aerr != nil {
		if out != nil && out.started {
			out.data(map[string]any{"error": aerr})
			return nil
		}
		return aerr
	}
	turn.finish()
	if turn.stopped {
		g.finish = engine.FinishStop
	}
	finish := g.finish
	if len(turn.calls) > 0 && g.finish == engine.FinishStop {
		finish = "tool_calls"
	}
	u := usageOf(g)
	if out != nil {
		out.data(chunk(chatRespMsg{}, nil, &finish))
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			out.data(chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: s.cfg.ModelName, Choices: []chatChoice{}, Usage: &u})
		}
		out.done()
		return nil
	}
	msg := turn.message()
	choice := chatChoice{Message: msg, FinishReason: &finish}
	if samp.Logprobs {
		choice.Logprobs = &chatLogprobs{Content: turn.lps}
	}
	writeJSON(w, chatResponse{ID: id, Object: "chat.completion", Created: created, Model: s.cfg.ModelName, Choices: []chatChoice{choice}, Usage: &u})
	return nil
}
