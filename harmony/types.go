package harmony

import "encoding/json"

// Role is the author role of a message.
type Role string

// Roles known to the harmony format.
const (
	RoleSystem    Role = "system"
	RoleDeveloper Role = "developer"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	// RoleTool marks a tool's output; the header shows Message.Name (e.g.
	// "functions.get_weather") instead of the role word.
	RoleTool Role = "tool"
)

func (r Role) valid() bool {
	switch r {
	case RoleSystem, RoleDeveloper, RoleUser, RoleAssistant, RoleTool:
		return true
	}
	return false
}

// Channels used by gpt-oss.
const (
	ChannelAnalysis   = "analysis"   // chain of thought, not for end users
	ChannelCommentary = "commentary" // function calls and user-visible preambles
	ChannelFinal      = "final"      // the answer
)

// Message is one harmony message. Empty strings mean "absent" for every
// optional field, like harmony's Option fields.
type Message struct {
	Role Role
	// Name is the author name: the tool name for RoleTool (required there),
	// otherwise rendered as "role:name".
	Name string
	// Recipient is the message's addressee, e.g. "functions.get_weather" for
	// a tool call or "assistant" for a tool result. "" and "all" are not
	// rendered.
	Recipient string
	Channel   string
	// ContentType is e.g. "<|constrain|>json" (the marker becomes the special
	// token) or a plain type such as "json" or "code".
	ContentType string
	// Content is the message text. For system and developer messages it is
	// appended after the structured content, if any.
	Content string
	// System is the structured content of a system message.
	System *SystemContent
	// Developer is the structured content of a developer message.
	Developer *DeveloperContent
}

// ReasoningEffort is the "Reasoning:" level of the system message.
type ReasoningEffort string

// Reasoning effort levels.
const (
	EffortLow    ReasoningEffort = "low"
	EffortMedium ReasoningEffort = "medium"
	EffortHigh   ReasoningEffort = "high"
)

// ChannelConfig lists the valid channels announced in the system message.
type ChannelConfig struct {
	Valid    []string
	Required bool // adds "Channel must be included for every message."
}

// SystemContent is the structured system message. Empty fields are omitted
// from the rendering; DefaultSystemContent gives harmony's defaults.
type SystemContent struct {
	ModelIdentity   string
	KnowledgeCutoff string
	CurrentDate     string // e.g. "2025-06-28"
	ReasoningEffort ReasoningEffort
	// Tools are built-in tool namespaces (see BrowserTool, PythonTool). They
	// render sorted by name, as harmony keeps them in an ordered map.
	Tools    []ToolNamespace
	Channels *ChannelConfig
}

// DefaultModelIdentity is harmony's default model identity line.
const DefaultModelIdentity = "You are ChatGPT, a large language model trained by OpenAI."

// DefaultKnowledgeCutoff is harmony's default knowledge cutoff.
const DefaultKnowledgeCutoff = "2024-06"

// DefaultSystemContent returns harmony's SystemContent defaults: default
// identity and cutoff, medium effort, no date, channels analysis,
// commentary, final (required).
func DefaultSystemContent() SystemContent {
	return SystemContent{
		ModelIdentity:   DefaultModelIdentity,
		KnowledgeCutoff: DefaultKnowledgeCutoff,
		ReasoningEffort: EffortMedium,
		Channels: &ChannelConfig{
			Valid:    []string{ChannelAnalysis, ChannelCommentary, ChannelFinal},
			Required: true,
		},
	}
}

// DeveloperContent is the structured developer message.
type DeveloperContent struct {
	Instructions string
	// Functions are rendered as the TypeScript namespace "functions".
	Functions []ToolDescription
}

// ToolDescription describes one tool.
type ToolDescription struct {
	Name        string
	Description string
	// Parameters is a JSON Schema object; empty or JSON null means the tool
	// takes no arguments.
	Parameters json.RawMessage
}

// ToolNamespace groups tools under a name, e.g. "browser" or "functions".
type ToolNamespace struct {
	Name        string
	Description string
	Tools       []ToolDescription
}

// BrowserTool returns the built-in browser tool namespace exactly as
// harmony's with_browser_tool defines it (the model was trained on it).
func BrowserTool() ToolNamespace {
	return ToolNamespace{
		Name: "browser",
		Description: "Tool for browsing.\n" +
			"The `cursor` appears in brackets before each browsing display: `[{cursor}]`.\n" +
			"Cite information from the tool using the following format:\n" +
			"`【{cursor}†L{line_start}(-L{line_end})?】`, for example: `【6†L9-L11】` or `【8†L3】`.\n" +
			"Do not quote more than 10 words directly from the tool output.\n" +
			"sources=web (default: web)",
		Tools: []ToolDescription{
			{
				Name:        "search",
				Description: "Searches for information related to `query` and displays `topn` results.",
				Parameters: json.RawMessage(`{"type":"object","properties":{` +
					`"query":{"type":"string"},` +
					`"topn":{"type":"number","default":10},` +
					`"source":{"type":"string"}},"required":["query"]}`),
			},
			{
				Name: "open",
				Description: "Opens the link `id` from the page indicated by `cursor` starting at line number `loc`, showing `num_lines` lines.\n" +
					"Valid link ids are displayed with the formatting: `【{id}†.*】`.\n" +
					"If `cursor` is not provided, the most recent page is implied.\n" +
					"If `id` is a string, it is treated as a fully qualified URL associated with `source`.\n" +
					"If `loc` is not provided, the viewport will be positioned at the beginning of the document or centered on the most relevant passage, if available.\n" +
					"Use this function without `id` to scroll to a new location of an opened page.",
				Parameters: json.RawMessage(`{"type":"object","properties":{` +
					`"id":{"type":["number","string"],"default":-1},` +
					`"cursor":{"type":"number","default":-1},` +
					`"loc":{"type":"number","default":-1},` +
					`"num_lines":{"type":"number","default":-1},` +
					`"view_source":{"type":"boolean","default":false},` +
					`"source":{"type":"string"}}}`),
			},
			{
				Name:        "find",
				Description: "Finds exact matches of `pattern` in the current page, or the page given by `cursor`.",
				Parameters: json.RawMessage(`{"type":"object","properties":{` +
					`"pattern":{"type":"string"},` +
					`"cursor":{"type":"number","default":-1}},"required":["pattern"]}`),
			},
		},
	}
}

// PythonTool returns the built-in python tool namespace exactly as
// harmony's with_python_tool defines it.
func PythonTool() ToolNamespace {
	return ToolNamespace{
		Name: "python",
		Description: "Use this tool to execute Python code in your chain of thought. " +
			"The code will not be shown to the user. This tool should be used for internal reasoning, " +
			"but not for code that is intended to be visible to the user (e.g. when creating plots, tables, or files).\n\n" +
			"When you send a message containing Python code to python, it will be executed in a stateful " +
			"Jupyter notebook environment. python will respond with the output of the execution or time out " +
			"after 120.0 seconds. The drive at '/mnt/data' can be used to save and persist user files. " +
			"Internet access for this session is UNKNOWN. Depends on the cluster.",
	}
}

// FunctionsPrefix is the recipient prefix of function-tool calls.
const FunctionsPrefix = "functions."

// SystemMessage returns a system message with structured content.
func SystemMessage(sc SystemContent) Message {
	return Message{Role: RoleSystem, System: &sc}
}

// DeveloperMessage returns a developer message with structured content.
func DeveloperMessage(dc DeveloperContent) Message {
	return Message{Role: RoleDeveloper, Developer: &dc}
}

// UserMessage returns a user message.
func UserMessage(text string) Message {
	return Message{Role: RoleUser, Content: text}
}

// AssistantMessage returns an assistant message on channel.
func AssistantMessage(channel, text string) Message {
	return Message{Role: RoleAssistant, Channel: channel, Content: text}
}

// FunctionCall returns the assistant message that calls function name with
// JSON arguments, in the form gpt-oss emits it (commentary channel,
// <|constrain|>json content type).
func FunctionCall(name, arguments string) Message {
	return Message{
		Role:        RoleAssistant,
		Recipient:   FunctionsPrefix + name,
		Channel:     ChannelCommentary,
		ContentType: ConstrainMarker + "json",
		Content:     arguments,
	}
}

// FunctionResult returns the tool message that feeds function name's output
// back to the model:
// <|start|>functions.NAME to=assistant<|channel|>commentary<|message|>OUTPUT<|end|>.
// The output is inserted verbatim (harmony does not JSON-encode it).
func FunctionResult(name, output string) Message {
	return Message{
		Role:      RoleTool,
		Name:      FunctionsPrefix + name,
		Recipient: "assistant",
		Channel:   ChannelCommentary,
		Content:   output,
	}
}
