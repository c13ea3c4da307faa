package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gptoss/gptoss/tokenizer"
)

// Endpoints a run can drive.
const (
	EndpointChat        = "chat"        // POST /v1/chat/completions
	EndpointCompletions = "completions" // POST /v1/completions
)

// Target is the server under test.
type Target struct {
	BaseURL  string // e.g. http://127.0.0.1:8000 (a trailing /v1 is accepted)
	Model    string // empty: the first id /v1/models lists
	Endpoint string // EndpointChat or EndpointCompletions
	APIKey   string // sent as a bearer token when set
}

// Prompt is one request's input.
type Prompt struct {
	Text     string
	Category string // scenarios: the task category
	// Tokens is Text's length with our tokenizer (the user text only;
	// the chat template adds its own).
	Tokens int
}

// Sampling is what every request of a run asks for.
type Sampling struct {
	MaxTokens int
	// IgnoreEOS asks for exactly MaxTokens tokens: vLLM's "ignore_eos"
	// and "min_tokens" extensions; servers without them ignore the fields
	// and may stop early.
	IgnoreEOS   bool
	Temperature *float64
}

// client sends streaming requests to one target.
type client struct {
	target Target
	http   *http.Client
	tok    *tokenizer.Tokenizer
}

func newClient(t Target, tok *tokenizer.Tokenizer, maxConns int) *client {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        max(maxConns, 100),
		MaxIdleConnsPerHost: max(maxConns, 2),
		IdleConnTimeout:     90 * time.Second,
		// Compression would make the transport buffer SSE chunks.
		DisableCompression: true,
	}
	return &client{target: t, http: &http.Client{Transport: tr}, tok: tok}
}

func (c *client) close() { c.http.CloseIdleConnections() }

// apiURL joins the base URL and an API path, accepting a base that
// already ends in /v1.
func apiURL(base, path string) string {
	base = strings.TrimRight(base, "/")
	base = strings.TrimSuffix(base, "/v1")
	return base + path
}

func (c *client) authorize(req *http.Request) {
	if c.target.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.target.APIKey)
	}
}

// DiscoverModel returns the first model id the server lists, for targets
// given without --model.
func DiscoverModel(ctx context.Context, t Target) (string, error) {
	c := newClient(t, nil, 1)
	defer c.close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL(t.BaseURL, "/v1/models"), nil)
	if err != nil {
		return "", fmt.Errorf("list models: %w", err)
	}
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("list models at %s: %w", t.BaseURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("list models at %s: HTTP %d: %s", t.BaseURL, resp.StatusCode, snippet(body))
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return "", fmt.Errorf("list models at %s: %w", t.BaseURL, err)
	}
	if len(list.Data) == 0 || list.Data[0].ID == "" {
		return "", fmt.Errorf("list models at %s: the server lists no model; pass --model", t.BaseURL)
	}
	return list.Data[0].ID, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func (c *client) body(p Prompt, s Sampling) ([]byte, string, error) {
	m := map[string]any{
		"model":          c.target.Model,
		"stream":         true,
		"stream_options": map[string]any{"include_usage": true},
		"max_tokens":     s.MaxTokens,
	}
	if s.Temperature != nil {
		m["temperature"] = *s.Temperature
	}
	if s.IgnoreEOS {
		m["ignore_eos"] = true
		m["min_tokens"] = s.MaxTokens
	}
	var path string
	switch c.target.Endpoint {
	case EndpointChat:
		path = "/v1/chat/completions"
		m["messages"] = []map[string]string{{"role": "user", "content": p.Text}}
		// Newer servers read max_completion_tokens, older ones max_tokens.
		m["max_completion_tokens"] = s.MaxTokens
	case EndpointCompletions, "":
		path = "/v1/completions"
		m["prompt"] = p.Text
	default:
		return nil, "", fmt.Errorf("unknown endpoint %q (want chat or completions)", c.target.Endpoint)
	}
	b, err := json.Marshal(m)
	return b, apiURL(c.target.BaseURL, path), err
}

// streamChunk is the union of the chat and completions chunk shapes.
type streamChunk struct {
	Choices []struct {
		Text  string `json:"text"`
		Delta struct {
			Content          string            `json:"content"`
			ReasoningContent string            `json:"reasoning_content"`
			Reasoning        string            `json:"reasoning"`
			ToolCalls        []json.RawMessage `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// do sends one streaming request and measures it. It never returns an
// error: failures are recorded in the result.
func (c *client) do(ctx context.Context, p Prompt, s Sampling) RequestResult {
	var r RequestResult
	r.Category = p.Category
	body, url, err := c.body(p, s)
	if err != nil {
		r.Error = "request: " + err.Error()
		return r
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		r.Error = "request: " + err.Error()
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	c.authorize(req)

	start := time.Now()
	fail := func(format string, args ...any) RequestResult {
		r.OK = false
		r.Error = fmt.Sprintf(format, args...)
		r.E2ES = time.Since(start).Seconds()
		return r
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fail("connect: %v", err)
	}
	defer resp.Body.Close()
	r.Status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fail("HTTP %d: %s", resp.StatusCode, snippet(b))
	}

	var text strings.Builder
	var last time.Time
	var done, gotText bool
	rd := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := rd.ReadString('\n')
		now := time.Now()
		line = strings.TrimRight(line, "\r\n")
		if data, ok := strings.CutPrefix(line, "data:"); ok {
			data = strings.TrimSpace(data)
			if data == "[DONE]" {
				done = true
				break
			}
			var ch streamChunk
			if jerr := json.Unmarshal([]byte(data), &ch); jerr != nil {
				return fail("stream: bad chunk %s: %v", snippet([]byte(data)), jerr)
			}
			if len(ch.Error) > 0 && string(ch.Error) != "null" {
				return fail("stream: server error: %s", snippet(ch.Error))
			}
			if ch.Usage != nil {
				r.UsageReported = true
				r.PromptTokens = ch.Usage.PromptTokens
				r.OutputTokens = ch.Usage.CompletionTokens
			}
			piece := ""
			calls := false
			for _, choice := range ch.Choices {
				piece += choice.Text + choice.Delta.Content + choice.Delta.ReasoningContent
				if choice.Delta.ReasoningContent == "" {
					// Servers send either field; some send both, the same text.
					piece += choice.Delta.Reasoning
				}
				calls = calls || len(choice.Delta.ToolCalls) > 0
				if choice.FinishReason != nil && *choice.FinishReason != "" {
					r.FinishReason = *choice.FinishReason
				}
			}
			// The first chunk of a chat stream carries only the role: it is
			// not a token, so it neither starts TTFT nor an ITL gap.
			if piece != "" || calls {
				if !gotText {
					r.TTFTS = now.Sub(start).Seconds()
					gotText = true
				} else {
					r.ITLS = append(r.ITLS, now.Sub(last).Seconds())
				}
				last = now
				r.Chunks++
				text.WriteString(piece)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fail("stream: %v", err)
		}
	}
	r.E2ES = time.Since(start).Seconds()
	if !done {
		return fail("stream: ended before data: [DONE]")
	}
	if !gotText {
		// A "success" with no token would pass for an instant answer.
		return fail("stream: no tokens in the response")
	}
	if c.tok != nil {
		r.CountedOutputTokens = len(c.tok.Encode(text.String()))
	}
	if !r.UsageReported {
		r.OutputTokens = r.CountedOutputTokens
		r.PromptTokens = p.Tokens
	}
	if r.OutputTokens > 1 {
		r.TPOTS = (r.E2ES - r.TTFTS) / float64(r.OutputTokens-1)
	}
	r.OK = true
	return r
}
