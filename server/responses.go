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

type responsesRequest struct {
	Model        string          `json:"model"`
	Input        json.RawMessage `json:"input"`
	Instructions string          `json:"instructions"`
	Reasoning    *struct {
		Effort string `json:"effort"`
	} `json:"reasoning"`
	Tools              []responsesTool   `json:"tools"`
	ToolChoice         json.RawMessage   `json:"tool_choice"`
	MaxOutputTokens    *int              `json:"max_output_tokens"`
	Temperature        *float64          `json:"temperature"`
	TopP               *float64          `json:"top_p"`
	Stream             bool              `json:"stream"`
	Store              *bool             `json:"store"`
	PreviousResponseID string            `json:"previous_response_id"`
	Metadata           map[string]string `json:"metadata"`
}

type responsesTool struct {
	Type string `json:"type"`
	functionTool
}

// item is one Responses API input or output item. Only the fields of its
// type are set.
type item struct {
	Type      string          `json:"type"`
	ID        string          `json:"id,omitempty"`
	Status    string          `json:"status,omitempty"`
	Role      string          `json:"role,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	Summary   json.RawMessage `json:"summary,omitempty"`
	CallID    string          `json:"call_id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Arguments *string         `json:"arguments,omitempty"`
	Output    *string         `json:"output,omitempty"`
}

type contentPart struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	Annotations []any  `json:"annotations,omitempty"`
}

func partsText(raw json.RawMessage, param string) (string, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []contentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalidRequest(param, "%s must be a string or an array of content parts", param)
	}
	var sb strings.Builder
	for _, p := range parts {
		switch p.Type {
		case "input_text", "output_text", "text", "reasoning_text", "summary_text":
			sb.WriteString(p.Text)
		default:
			return "", invalidRequest(param, "content part type %q is not supported: this model reads text only", p.Type)
		}
	}
	return sb.String(), nil
}

// inputItems parses input: a string (one user message) or an array of items.
func inputItems(raw json.RawMessage) ([]item, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, invalidRequest("input", "'input' is required")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		c, _ := json.Marshal(s)
		return []item{{Type: "message", Role: "user", Content: c}}, nil
	}
	var items []item
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalidRequest("input", "'input' must be a string or an array of input items")
	}
	for i := range items {
		if items[i].Type == "" && items[i].Role != "" {
			items[i].Type = "message"
		}
	}
	return items, nil
}

// addItems appends items to a conversation in harmony form.
func (c *conversation) addItems(items []item, callNames map[string]string) *apiError {
	for i, it := range items {
		param := fmt.Sprintf("input[%d]", i)
		switch it.Type {
		case "message":
			text, aerr := partsText(it.Content, param+".content")
			if aerr != nil {
				return aerr
			}
			switch it.Role {
			case "system", "developer":
				c.instructions = append(c.instructions, text)
			case "user":
				c.msgs = append(c.msgs, harmony.UserMessage(text))
			case "assistant":
				c.msgs = append(c.msgs, harmony.AssistantMessage(harmony.ChannelFinal, text))
			default:
				return invalidRequest(param+".role", "unknown role %q", it.Role)
			}
		case "reasoning":
			text, aerr := partsText(it.Content, param+".content")
			if aerr != nil {
				return aerr
			}
			if text != "" {
				c.msgs = append(c.msgs, harmony.AssistantMessage(harmony.ChannelAnalysis, text))
			}
		case "function_call":
			if it.Name == "" {
				return invalidRequest(param+".name", "a function_call item needs a name")
			}
			args := ""
			if it.Arguments != nil {
				args = *it.Arguments
			}
			callNames[it.CallID] = it.Name
			c.msgs = append(c.msgs, harmony.FunctionCall(it.Name, args))
		case "function_call_output":
			name, ok := callNames[it.CallID]
			if !ok {
				return invalidRequest(param+".call_id", "function_call_output %q answers no earlier function_call", it.CallID)
			}
			out := ""
			if it.Output != nil {
				out = *it.Output
			}
			c.msgs = append(c.msgs, harmony.FunctionResult(name, out))
		default:
			return invalidRequest(param+".type", "input item type %q is not supported", it.Type)
		}
	}
	return nil
}

type responseObject struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	CreatedAt          int64             `json:"created_at"`
	Status             string            `json:"status"`
	Error              any               `json:"error"`
	IncompleteDetails  any               `json:"incomplete_details"`
	Instructions       *string           `json:"instructions"`
	MaxOutputTokens    *int              `json:"max_output_tokens"`
	Model              string            `json:"model"`
	Output             []item            `json:"output"`
	ParallelToolCalls  bool              `json:"parallel_tool_calls"`
	PreviousResponseID *string           `json:"previous_response_id"`
	Reasoning          map[string]any    `json:"reasoning"`
	Store              bool              `json:"store"`
	Temperature        float64           `json:"temperature"`
	TopP               float64           `json:"top_p"`
	ToolChoice         any               `json:"tool_choice"`
	Tools              []responsesTool   `json:"tools"`
	Text               map[string]any    `json:"text"`
	Truncation         string            `json:"truncation"`
	Metadata           map[string]string `json:"metadata"`
	Usage              *responsesUsage   `json:"usage"`
}

type responsesUsage struct {
	InputTokens         int            `json:"input_tokens"`
	InputTokensDetails  map[string]int `json:"input_tokens_details"`
	OutputTokens        int            `json:"output_tokens"`
	OutputTokensDetails map[string]int `json:"output_tokens_details"`
	TotalTokens         int            `json:"total_tokens"`
}

func (s *Server) handleResponses(w http.ResponseWriter, r *http.Request) *apiError {
	start := time.Now()
	var req responsesRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.checkModel(req.Model); err != nil {
		return err
	}
	input, aerr := inputItems(req.Input)
	if aerr != nil {
		return aerr
	}
	c := &conversation{}
	effort := ""
	if req.Reasoning != nil {
		effort = req.Reasoning.Effort
	}
	if c.effort, aerr = parseEffort(effort, "reasoning.effort"); aerr != nil {
		return aerr
	}
	if req.Instructions != "" {
		c.instructions = append(c.instructions, req.Instructions)
	}
	for i, t := range req.Tools {
		if t.Type != "function" {
			return invalidRequest(fmt.Sprintf("tools[%d].type", i), "tool type %q is not supported; use \"function\"", t.Type)
		}
		td, aerr := t.functionTool.harmony(fmt.Sprintf("tools[%d]", i))
		if aerr != nil {
			return aerr
		}
		c.tools = append(c.tools, td)
	}
	tc, aerr := parseToolChoice(req.ToolChoice, c.tools)
	if aerr != nil {
		return aerr
	}
	if tc.mode == "none" {
		c.tools = nil
	}
	// The conversation so far: the previous response's items, then input.
	var history []item
	if req.PreviousResponseID != "" {
		prev, ok := s.store.get(req.PreviousResponseID)
		if !ok {
			return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Param: strp("previous_response_id"),
				Message: fmt.Sprintf("previous response %q not found (it was not stored, or was evicted)", req.PreviousResponseID)}
		}
		if err := json.Unmarshal(prev.conv, &history); err != nil {
			return &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: "stored conversation is corrupt"}
		}
	}
	history = append(history, input...)
	if aerr := c.addItems(history, map[string]string{}); aerr != nil {
		return aerr
	}
	prompt, aerr := c.prompt(s)
	if aerr != nil {
		return aerr
	}
	samp, aerr := samplingParams{Temperature: req.Temperature, TopP: req.TopP}.sampling()
	if aerr != nil {
		return aerr
	}
	maxTok, aerr := s.maxTokens(req.MaxOutputTokens, len(prompt), "max_output_tokens")
	if aerr != nil {
		return aerr
	}
	ereq := engine.Request{Prompt: prompt, MaxTokens: maxTok, Sampling: samp, StopTokens: s.cfg.AssistantStops}
	if tc.mode == "required" || tc.mode == "function" {
		ereq.Constraint = newToolCallConstraint(s.tok, tc.allowed(c.tools), s.mcfg.VocabSize, maxTok)
	}

	store := req.Store == nil || *req.Store
	resp := responseObject{
		ID: newID("resp_"), Object: "response", CreatedAt: time.Now().Unix(), Status: "in_progress",
		MaxOutputTokens: req.MaxOutputTokens, Model: s.cfg.ModelName, Output: []item{}, ParallelToolCalls: true,
		Reasoning: map[string]any{"effort": string(c.effort), "summary": nil}, Store: store,
		Temperature: samp.Temperature, TopP: samp.TopP, ToolChoice: toolChoiceValue(req.ToolChoice), Tools: req.Tools,
		Text: map[string]any{"format": map[string]string{"type": "text"}}, Truncation: "disabled", Metadata: req.Metadata,
	}
	if resp.Tools == nil {
		resp.Tools = []responsesTool{}
	}
	if resp.Metadata == nil {
		resp.Metadata = map[string]string{}
	}
	if req.Instructions != "" {
		resp.Instructions = &req.Instructions
	}
	if req.PreviousResponseID != "" {
		resp.PreviousResponseID = &req.PreviousResponseID
	}

	ev := &responseEvents{}
	if req.Stream {
		ev.out = newSSE(w)
		ev.send("response.created", map[string]any{"response": resp})
		ev.send("response.in_progress", map[string]any{"response": resp})
	}
	parser := harmony.NewParser(harmony.ParserOptions{})
	reasoningTokens := 0
	handle := func(evs []harmony.Event) {
		for _, e := range evs {
			switch e := e.(type) {
			case harmony.ReasoningDelta:
				ev.delta(&resp, "reasoning", e.Text, "")
			case harmony.ContentDelta:
				ev.delta(&resp, "message", e.Text, "")
			case harmony.ToolCallDelta:
				ev.delta(&resp, "function_call", e.Arguments, e.Name)
				ev.cur.CallID = e.ID
			case harmony.ToolCall:
				if ev.cur == nil || ev.cur.Type != "function_call" {
					ev.delta(&resp, "function_call", "", e.Name)
				}
				ev.cur.CallID, ev.cur.Name = e.ID, e.Name
				ev.text.Reset()
				ev.text.WriteString(e.Arguments)
				ev.close(&resp)
			case harmony.MessageEnd:
				ev.close(&resp)
			}
		}
	}
	g, aerr := s.generate(r.Context(), start, ereq, func(tok engine.Token) bool {
		piece, _ := s.tok.TokenString(int(tok.ID))
		before := ev.kind()
		handle(parser.Push(int(tok.ID), piece))
		if before == "reasoning" || ev.kind() == "reasoning" {
			reasoningTokens++
		}
		return true
	})
	if aerr != nil {
		if ev.out != nil && ev.out.started {
			ev.send("error", map[string]any{"code": aerr.Code, "message": aerr.Message, "param": aerr.Param})
			return nil
		}
		return aerr
	}
	handle(parser.Finish())
	ev.close(&resp)
	resp.Status = "completed"
	if g.finish == engine.FinishLength {
		resp.Status = "incomplete"
		resp.IncompleteDetails = map[string]string{"reason": "max_output_tokens"}
	}
	resp.Usage = &responsesUsage{
		InputTokens: g.prompt, InputTokensDetails: map[string]int{"cached_tokens": 0},
		OutputTokens: g.completion, OutputTokensDetails: map[string]int{"reasoning_tokens": reasoningTokens},
		TotalTokens: g.prompt + g.completion,
	}
	body, _ := json.Marshal(resp)
	if store {
		conv, _ := json.Marshal(append(history, resp.Output...))
		s.store.put(&storedResponse{id: resp.ID, body: body, conv: conv})
	}
	if ev.out != nil {
		name := "response.completed"
		if resp.Status == "incomplete" {
			name = "response.incomplete"
		}
		ev.send(name, map[string]any{"response": resp})
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
	return nil
}

func toolChoiceValue(raw json.RawMessage) any {
	if len(raw) == 0 {
		return "auto"
	}
	return raw
}

// responseEvents builds output items and, when streaming, sends the
// Responses API events for them in order.
type responseEvents struct {
	out  *sse
	seq  int
	cur  *item
	text strings.Builder
}

func (e *responseEvents) kind() string {
	if e.cur == nil {
		return ""
	}
	return e.cur.Type
}

func (e *responseEvents) send(name string, fields map[string]any) {
	if e.out == nil {
		return
	}
	fields["type"] = name
	fields["sequence_number"] = e.seq
	e.seq++
	e.out.event(name, fields)
}

// delta adds text to the open item of kind, opening one first if needed.
func (e *responseEvents) delta(resp *responseObject, kind, text, name string) {
	if e.kind() != kind {
		e.close(resp)
		e.open(resp, kind, name)
	}
	e.text.WriteString(text)
	if text == "" {
		return
	}
	idx := len(resp.Output)
	switch kind {
	case "reasoning":
		e.send("response.reasoning_text.delta", map[string]any{"item_id": e.cur.ID, "output_index": idx, "content_index": 0, "delta": text})
	case "message":
		e.send("response.output_text.delta", map[string]any{"item_id": e.cur.ID, "output_index": idx, "content_index": 0, "delta": text, "logprobs": []any{}})
	case "function_call":
		e.send("response.function_call_arguments.delta", map[string]any{"item_id": e.cur.ID, "output_index": idx, "delta": text})
	}
}

func (e *responseEvents) open(resp *responseObject, kind, name string) {
	it := &item{Type: kind, Status: "in_progress"}
	switch kind {
	case "reasoning":
		it.ID, it.Summary, it.Content, it.Status = newID("rs_"), json.RawMessage("[]"), json.RawMessage("[]"), ""
	case "message":
		it.ID, it.Role, it.Content = newID("msg_"), "assistant", json.RawMessage("[]")
	case "function_call":
		empty := ""
		it.ID, it.Name, it.Arguments = newID("fc_"), name, &empty
	}
	e.cur = it
	e.text.Reset()
	idx := len(resp.Output)
	e.send("response.output_item.added", map[string]any{"output_index": idx, "item": it})
	if kind == "message" {
		e.send("response.content_part.added", map[string]any{"item_id": it.ID, "output_index": idx, "content_index": 0,
			"part": contentPart{Type: "output_text", Text: "", Annotations: []any{}}})
	}
}

// close finishes the open item and appends it to the response output.
func (e *responseEvents) close(resp *responseObject) {
	if e.cur == nil {
		return
	}
	it, text, idx := e.cur, e.text.String(), len(resp.Output)
	switch it.Type {
	case "reasoning":
		it.Content, _ = json.Marshal([]contentPart{{Type: "reasoning_text", Text: text}})
		e.send("response.reasoning_text.done", map[string]any{"item_id": it.ID, "output_index": idx, "content_index": 0, "text": text})
	case "message":
		part := contentPart{Type: "output_text", Text: text, Annotations: []any{}}
		it.Content, _ = json.Marshal([]contentPart{part})
		it.Status = "completed"
		e.send("response.output_text.done", map[string]any{"item_id": it.ID, "output_index": idx, "content_index": 0, "text": text, "logprobs": []any{}})
		e.send("response.content_part.done", map[string]any{"item_id": it.ID, "output_index": idx, "content_index": 0, "part": part})
	case "function_call":
		it.Arguments, it.Status = &text, "completed"
		e.send("response.function_call_arguments.done", map[string]any{"item_id": it.ID, "output_index": idx, "arguments": text})
	}
	e.send("response.output_item.done", map[string]any{"output_index": idx, "item": it})
	resp.Output = append(resp.Output, *it)
	e.cur = nil
	e.text.Reset()
}

func (s *Server) handleGetResponse(w http.ResponseWriter, r *http.Request) *apiError {
	stored, ok := s.store.get(r.PathValue("id"))
	if !ok {
		return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Message: fmt.Sprintf("response %q not found", r.PathValue("id"))}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(stored.body)
	return nil
}

func (s *Server) handleDeleteResponse(w http.ResponseWriter, r *http.Request) *apiError {
	id := r.PathValue("id")
	if !s.store.delete(id) {
		return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Message: fmt.Sprintf("response %q not found", id)}
	}
	writeJSON(w, map[string]any{"id": id, "object": "response", "deleted": true})
	return nil
}
