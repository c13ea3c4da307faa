package server

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/gptoss/gptoss/harmony"
)

// conversation is what the chat and responses endpoints build from a
// request before rendering it in the harmony format.
type conversation struct {
	instructions []string // system / developer text → developer instructions
	tools        []harmony.ToolDescription
	effort       harmony.ReasoningEffort
	msgs         []harmony.Message // user, assistant and tool messages
}

func parseEffort(s, param string) (harmony.ReasoningEffort, *apiError) {
	switch strings.ToLower(s) {
	case "":
		return harmony.EffortMedium, nil
	case "low":
		return harmony.EffortLow, nil
	case "medium":
		return harmony.EffortMedium, nil
	case "high":
		return harmony.EffortHigh, nil
	}
	return "", invalidRequest(param, "%s must be low, medium or high, got %q", param, s)
}

// prompt renders the conversation as harmony tokens ending in
// <|start|>assistant: the system message (date, reasoning effort), the
// developer message (instructions and function tools), then the messages.
func (c *conversation) prompt(s *Server) ([]int32, *apiError) {
	sys := harmony.DefaultSystemContent()
	sys.ReasoningEffort = c.effort
	sys.CurrentDate = time.Now().UTC().Format("2006-01-02")
	msgs := []harmony.Message{harmony.SystemMessage(sys)}
	if len(c.instructions) > 0 || len(c.tools) > 0 {
		msgs = append(msgs, harmony.DeveloperMessage(harmony.DeveloperContent{
			Instructions: strings.Join(c.instructions, "\n\n"),
			Functions:    c.tools,
		}))
	}
	msgs = append(msgs, c.msgs...)
	r, err := harmony.RenderCompletion(msgs, harmony.RenderOptions{})
	if err != nil {
		return nil, invalidRequest("messages", "cannot render the conversation: %v", err)
	}
	return toInt32(r.Tokens(s.tok)), nil
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}

// functionTool is the function definition shared by chat's
// {"type":"function","function":{...}} and responses' flat form.
type functionTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

func (f functionTool) harmony(param string) (harmony.ToolDescription, *apiError) {
	if f.Name == "" {
		return harmony.ToolDescription{}, invalidRequest(param, "every function tool needs a name")
	}
	if len(f.Parameters) > 0 && string(f.Parameters) != "null" {
		var schema map[string]any
		if err := json.Unmarshal(f.Parameters, &schema); err != nil {
			return harmony.ToolDescription{}, invalidRequest(param, "the parameters of function %q must be a JSON Schema object", f.Name)
		}
	}
	return harmony.ToolDescription{Name: f.Name, Description: f.Description, Parameters: f.Parameters}, nil
}

// toolChoice is "auto", "none", "required", or one named function.
type toolChoice struct {
	mode string // auto | none | required | function
	name string
}

func parseToolChoice(raw json.RawMessage, tools []harmony.ToolDescription) (toolChoice, *apiError) {
	tc := toolChoice{mode: "auto"}
	if len(raw) == 0 || string(raw) == "null" {
		return tc, nil
	}
	var mode string
	if json.Unmarshal(raw, &mode) == nil {
		switch mode {
		case "auto", "none", "required":
			tc.mode = mode
		default:
			return tc, invalidRequest("tool_choice", "tool_choice must be auto, none, required or a function, got %q", mode)
		}
	} else {
		// {"type":"function","function":{"name":N}} (chat) or
		// {"type":"function","name":N} (responses).
		var named struct {
			Type     string `json:"type"`
			Name     string `json:"name"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if err := json.Unmarshal(raw, &named); err != nil || named.Type != "function" {
			return tc, invalidRequest("tool_choice", "tool_choice must be a string or {\"type\": \"function\", ...}")
		}
		tc.mode, tc.name = "function", named.Function.Name
		if tc.name == "" {
			tc.name = named.Name
		}
	}
	if (tc.mode == "required" || tc.mode == "function") && len(tools) == 0 {
		return tc, invalidRequest("tool_choice", "tool_choice %q needs tools", tc.mode)
	}
	if tc.mode == "function" {
		found := false
		for _, t := range tools {
			found = found || t.Name == tc.name
		}
		if !found {
			return tc, invalidRequest("tool_choice", "tool_choice names function %q, which is not among the tools", tc.name)
		}
	}
	return tc, nil
}

// allowed lists the function names a constrained call may use.
func (tc toolChoice) allowed(tools []harmony.ToolDescription) []string {
	if tc.mode == "function" {
		return []string{tc.name}
	}
	names := make([]string, len(tools))
	for i, t := range tools {
		names[i] = t.Name
	}
	return names
}
