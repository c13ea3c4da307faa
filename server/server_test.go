package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gptoss/gptoss/backend/cpu"
	"github.com/gptoss/gptoss/engine"
	"github.com/gptoss/gptoss/harmony"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/model"
	"github.com/gptoss/gptoss/synth"
	"github.com/gptoss/gptoss/tokenizer"
)

// checkpointDir is a tiny synthetic checkpoint with the full vocabulary,
// written once for the package's tests.
var checkpointDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gptoss-server-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg, err := synth.Preset("tiny")
	if err == nil {
		_, err = synth.Write(context.Background(), dir, cfg, synth.Options{Seed: 7})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "synth:", err)
		os.Exit(1)
	}
	checkpointDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type testServer struct {
	*httptest.Server
	srv *Server
	eng *engine.Engine
}

func newTestServer(t *testing.T, mutate func(*Config, *engine.Options)) *testServer {
	t.Helper()
	ck, err := loader.Open(checkpointDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := model.New(cpu.New(), ck.Config, &ck.Weights)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Default()
	if err != nil {
		t.Fatal(err)
	}
	eo := engine.Options{MaxSeqs: 8, MaxModelLen: 2048, KVCacheBytes: 256 << 20, MaxQueue: 32, StepTokens: 256}
	cfg := Config{ModelName: "tiny", RandomWeights: true, MaxModelLen: 2048, DefaultMaxTokens: 16,
		EOSTokens: []int32{200002, 199999, 200012}, AssistantStops: []int32{harmony.TokenReturn, harmony.TokenCall}}
	if mutate != nil {
		mutate(&cfg, &eo)
	}
	eng, err := engine.New(m, eo)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { eng.Run(ctx); close(done) }()
	srv := New(cfg, eng, tok, m.Config)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); cancel(); <-done })
	return &testServer{Server: ts, srv: srv, eng: eng}
}

func (ts *testServer) post(t *testing.T, path, body string, header ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", ts.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (ts *testServer) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return v
}

// sseData returns the data payloads of an event stream.
func sseData(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func TestModelsAndHealth(t *testing.T) {
	ts := newTestServer(t, nil)
	code, b := ts.get(t, "/v1/models")
	models := decode[struct {
		Object string      `json:"object"`
		Data   []modelCard `json:"data"`
	}](t, b)
	if code != 200 || models.Object != "list" || len(models.Data) != 1 || models.Data[0].ID != "tiny" || !strings.Contains(models.Data[0].Description, "random weights") {
		t.Fatalf("%d %s", code, b)
	}
	if code, _ := ts.get(t, "/v1/models/tiny"); code != 200 {
		t.Fatalf("GET /v1/models/tiny: %d", code)
	}
	if code, _ := ts.get(t, "/health"); code != 200 {
		t.Fatalf("health %d", code)
	}
}

func TestChatCompletion(t *testing.T) {
	ts := newTestServer(t, nil)
	code, b := ts.post(t, "/v1/chat/completions", `{"model":"tiny","messages":[
		{"role":"system","content":"Be brief."},
		{"role":"user","content":"What is 2+2?"},
		{"role":"assistant","content":"4","reasoning_content":"simple"},
		{"role":"user","content":[{"type":"text","text":"And 3+3?"}]}],
		"max_tokens":8,"temperature":0,"logprobs":true,"top_logprobs":2}`)
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	r := decode[chatResponse](t, b)
	if r.Object != "chat.completion" || len(r.Choices) != 1 || r.Usage == nil || r.Usage.CompletionTokens != 8 || r.Usage.PromptTokens == 0 {
		t.Fatalf("response %s", b)
	}
	if fr := *r.Choices[0].FinishReason; fr != "length" && fr != "stop" {
		t.Fatalf("finish_reason %q", fr)
	}
	// One log-prob per content token, whenever the parser released the text.
	if c := r.Choices[0].Message.Content; c != nil && *c != "" {
		lp := r.Choices[0].Logprobs
		if lp == nil || len(lp.Content) == 0 || len(lp.Content) > 8 || len(lp.Content[0].TopLogprobs) != 2 {
			t.Fatalf("logprobs for content %q: %s", *c, b)
		}
		var joined string
		for _, e := range lp.Content {
			joined += e.Token
		}
		if !strings.Contains(joined, *c) && !strings.Contains(*c, joined) {
			t.Fatalf("logprob tokens %q do not spell the content %q", joined, *c)
		}
	}
	if r.Choices[0].Message.Content == nil && r.Choices[0].Message.Reasoning == nil {
		t.Fatalf("neither content nor reasoning: %s", b)
	}
}

// A stop string found in content the parser released only at the end
// still finishes with "stop".
func TestChatStopString(t *testing.T) {
	ts := newTestServer(t, nil)
	_, b := ts.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"Say hello."}],"max_tokens":16,"temperature":0}`)
	full := decode[chatResponse](t, b).Choices[0].Message.Content
	if full == nil || len(*full) < 8 {
		t.Skipf("greedy content %v too short to cut", full)
	}
	stop := (*full)[4:7]
	_, b = ts.post(t, "/v1/chat/completions", fmt.Sprintf(`{"messages":[{"role":"user","content":"Say hello."}],"max_tokens":16,"temperature":0,"stop":[%q]}`, stop))
	r := decode[chatResponse](t, b)
	if want := (*full)[:strings.Index(*full, stop)]; *r.Choices[0].Message.Content != want || *r.Choices[0].FinishReason != "stop" {
		t.Fatalf("stop %q: %q (%s), want %q (stop)", stop, *r.Choices[0].Message.Content, *r.Choices[0].FinishReason, want)
	}
}

func TestChatStream(t *testing.T) {
	ts := newTestServer(t, nil)
	code, b := ts.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":6,"stream":true,"stream_options":{"include_usage":true},"temperature":0}`)
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	data := sseData(t, b)
	if len(data) < 3 || data[len(data)-1] != "[DONE]" {
		t.Fatalf("stream %q", data)
	}
	first := decode[chatResponse](t, []byte(data[0]))
	if first.Object != "chat.completion.chunk" || first.Choices[0].Delta.Role != "assistant" {
		t.Fatalf("first chunk %s", data[0])
	}
	last := decode[chatResponse](t, []byte(data[len(data)-2]))
	if last.Usage == nil || last.Usage.CompletionTokens != 6 || len(last.Choices) != 0 {
		t.Fatalf("usage chunk %s", data[len(data)-2])
	}
	fin := decode[chatResponse](t, []byte(data[len(data)-3]))
	if fin.Choices[0].FinishReason == nil {
		t.Fatalf("finish chunk %s", data[len(data)-3])
	}
	// The streamed result equals the non-streamed one (greedy).
	_, nb := ts.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":6,"temperature":0}`)
	whole := decode[chatResponse](t, nb)
	var content, reasoning string
	for _, d := range data[:len(data)-1] {
		c := decode[chatResponse](t, []byte(d))
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				content += *ch.Delta.Content
			}
			if ch.Delta.Reasoning != nil {
				reasoning += *ch.Delta.Reasoning
			}
		}
	}
	m := whole.Choices[0].Message
	if (m.Content != nil && *m.Content != content) || (m.Reasoning != nil && *m.Reasoning != reasoning) {
		t.Fatalf("stream gave %q / %q, non-stream %s", content, reasoning, nb)
	}
}

// tool_choice "required" and a named function force a well-formed call.
func TestChatToolChoiceRequired(t *testing.T) {
	ts := newTestServer(t, nil)
	tools := `[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},
		{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{}}}}]`
	for _, choice := range []string{`"required"`, `{"type":"function","function":{"name":"get_time"}}`} {
		for seed := range 3 {
			code, b := ts.post(t, "/v1/chat/completions", fmt.Sprintf(`{"messages":[{"role":"user","content":"Weather in Paris?"}],"tools":%s,"tool_choice":%s,"max_tokens":200,"seed":%d}`, tools, choice, seed))
			if code != 200 {
				t.Fatalf("%d %s", code, b)
			}
			r := decode[chatResponse](t, b)
			msg := r.Choices[0].Message
			if *r.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 1 {
				t.Fatalf("tool_choice %s: %s", choice, b)
			}
			call := msg.ToolCalls[0]
			if !json.Valid([]byte(call.Function.Arguments)) || !strings.HasPrefix(strings.TrimSpace(call.Function.Arguments), "{") {
				t.Fatalf("arguments %q are not a JSON object", call.Function.Arguments)
			}
			if call.Function.Name != "get_weather" && call.Function.Name != "get_time" || (strings.Contains(choice, "get_time") && call.Function.Name != "get_time") {
				t.Fatalf("called %q under tool_choice %s", call.Function.Name, choice)
			}
			if !strings.HasPrefix(call.ID, "call_") || call.Type != "function" {
				t.Fatalf("call %+v", call)
			}
		}
	}
}

// A tool loop: the assistant's call and the tool's result are rendered
// back, and the request succeeds.
func TestChatToolResult(t *testing.T) {
	ts := newTestServer(t, nil)
	code, b := ts.post(t, "/v1/chat/completions", `{"messages":[
		{"role":"user","content":"Weather?"},
		{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"sunny"}],
		"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"max_tokens":4}`)
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
}

func TestCompletions(t *testing.T) {
	ts := newTestServer(t, nil)
	code, b := ts.post(t, "/v1/completions", `{"model":"tiny","prompt":"Once upon a time","max_tokens":5,"temperature":0,"logprobs":2}`)
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	r := decode[completionResponse](t, b)
	if r.Object != "text_completion" || r.Usage.CompletionTokens != 5 || r.Usage.PromptTokens != 4 {
		t.Fatalf("%s", b)
	}
	lp := r.Choices[0].Logprobs
	if lp == nil || len(lp.Tokens) != 5 || len(lp.TopLogprobs[0]) != 2 || strings.Join(lp.Tokens, "") != r.Choices[0].Text {
		t.Fatalf("logprobs %s", b)
	}
	// Token ids as the prompt, streamed: the same text as above.
	ids := ts.srv.tok.Encode("Once upon a time")
	idsJSON, _ := json.Marshal(ids)
	code, sb := ts.post(t, "/v1/completions", `{"prompt":`+string(idsJSON)+`,"max_tokens":5,"temperature":0,"stream":true}`)
	if code != 200 {
		t.Fatalf("%d %s", code, sb)
	}
	var text string
	data := sseData(t, sb)
	for _, d := range data[:len(data)-1] {
		text += decode[completionResponse](t, []byte(d)).Choices[0].Text
	}
	if text != r.Choices[0].Text || data[len(data)-1] != "[DONE]" {
		t.Fatalf("streamed %q, want %q", text, r.Choices[0].Text)
	}
}

// vLLM's ignore_eos and min_tokens, which benchmark clients send.
func TestIgnoreEOS(t *testing.T) {
	if got := (samplingParams{IgnoreEOS: true}).stopTokens([]int32{1, 2}); got != nil {
		t.Fatalf("ignore_eos kept stop tokens %v", got)
	}
	ts := newTestServer(t, nil)
	code, b := ts.post(t, "/v1/completions", `{"prompt":"hi","max_tokens":5,"min_tokens":5,"ignore_eos":true}`)
	if r := decode[completionResponse](t, b); code != 200 || r.Usage.CompletionTokens != 5 {
		t.Fatalf("%d %s", code, b)
	}
	if code, b := ts.post(t, "/v1/completions", `{"prompt":"hi","max_tokens":2,"min_tokens":5}`); code != 400 {
		t.Fatalf("min_tokens > max_tokens: %d %s", code, b)
	}
}

func TestCompletionsStopString(t *testing.T) {
	ts := newTestServer(t, nil)
	_, b := ts.post(t, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":12,"temperature":0}`)
	full := decode[completionResponse](t, b).Choices[0].Text
	if len(full) < 6 {
		t.Skipf("greedy text %q too short to cut", full)
	}
	stop := full[3:6]
	_, b = ts.post(t, "/v1/completions", fmt.Sprintf(`{"prompt":"Once upon a time","max_tokens":12,"temperature":0,"stop":%q}`, stop))
	r := decode[completionResponse](t, b)
	want := full[:strings.Index(full, stop)]
	if r.Choices[0].Text != want || *r.Choices[0].FinishReason != "stop" {
		t.Fatalf("with stop %q: %q (%s), want %q", stop, r.Choices[0].Text, *r.Choices[0].FinishReason, want)
	}
}

func TestResponses(t *testing.T) {
	ts := newTestServer(t, nil)
	code, b := ts.post(t, "/v1/responses", `{"model":"tiny","input":"Hello","instructions":"Be brief.","reasoning":{"effort":"low"},"max_output_tokens":8}`)
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	r := decode[responseObject](t, b)
	if r.Object != "response" || (r.Status != "completed" && r.Status != "incomplete") || r.Usage.OutputTokens != 8 || len(r.Output) == 0 {
		t.Fatalf("%s", b)
	}
	// Continue the conversation; the first response's items are in the prompt.
	code, b2 := ts.post(t, "/v1/responses", `{"input":"More","previous_response_id":"`+r.ID+`","max_output_tokens":4}`)
	if code != 200 {
		t.Fatalf("%d %s", code, b2)
	}
	r2 := decode[responseObject](t, b2)
	if r2.Usage.InputTokens <= r.Usage.InputTokens {
		t.Fatalf("continuation prompt %d tokens, first %d", r2.Usage.InputTokens, r.Usage.InputTokens)
	}
	if code, _ := ts.get(t, "/v1/responses/"+r.ID); code != 200 {
		t.Fatalf("GET stored response: %d", code)
	}
	// store:false is not kept.
	_, b3 := ts.post(t, "/v1/responses", `{"input":"x","store":false,"max_output_tokens":2}`)
	r3 := decode[responseObject](t, b3)
	if code, _ := ts.get(t, "/v1/responses/"+r3.ID); code != 404 {
		t.Fatalf("store:false response was stored (%d)", code)
	}
	if code, b := ts.post(t, "/v1/responses", `{"input":"x","previous_response_id":"resp_nope"}`); code != 404 {
		t.Fatalf("unknown previous_response_id: %d %s", code, b)
	}
}

func TestResponsesStream(t *testing.T) {
	ts := newTestServer(t, nil)
	code, b := ts.post(t, "/v1/responses", `{"input":"Hello","max_output_tokens":6,"stream":true}`)
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	data := sseData(t, b)
	var types []string
	for i, d := range data {
		ev := decode[map[string]any](t, []byte(d))
		types = append(types, ev["type"].(string))
		if int(ev["sequence_number"].(float64)) != i {
			t.Fatalf("event %d has sequence_number %v", i, ev["sequence_number"])
		}
	}
	if types[0] != "response.created" || types[1] != "response.in_progress" {
		t.Fatalf("events %v", types)
	}
	if last := types[len(types)-1]; last != "response.completed" && last != "response.incomplete" {
		t.Fatalf("last event %s", last)
	}
}

func TestResponseStoreEviction(t *testing.T) {
	s := newResponseStore(2, 1000)
	for i := range 3 {
		s.put(&storedResponse{id: fmt.Sprint(i), body: make([]byte, 100)})
	}
	if _, ok := s.get("0"); ok {
		t.Fatal("oldest response kept beyond the count bound")
	}
	s.put(&storedResponse{id: "big", body: make([]byte, 900)})
	if _, ok := s.get("1"); ok {
		t.Fatal("byte bound not enforced")
	}
	if _, ok := s.get("big"); !ok {
		t.Fatal("newest response evicted")
	}
}

func TestErrors(t *testing.T) {
	ts := newTestServer(t, func(c *Config, o *engine.Options) { c.MaxModelLen, o.MaxModelLen = 256, 256 })
	long := strings.Repeat("word ", 300)
	cases := []struct {
		name, path, body string
		status           int
		errType, param   string
	}{
		{"malformed JSON", "/v1/chat/completions", `{"messages":`, 400, "invalid_request_error", ""},
		{"empty body", "/v1/chat/completions", ``, 400, "invalid_request_error", ""},
		{"wrong type", "/v1/chat/completions", `{"messages":"hi"}`, 400, "invalid_request_error", "messages"},
		{"wrong type nested", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}`, 400, "invalid_request_error", "temperature"},
		{"unknown model", "/v1/chat/completions", `{"model":"gpt-4","messages":[{"role":"user","content":"x"}]}`, 404, "invalid_request_error", "model"},
		{"empty messages", "/v1/chat/completions", `{"messages":[]}`, 400, "invalid_request_error", "messages"},
		{"unknown role", "/v1/chat/completions", `{"messages":[{"role":"robot","content":"x"}]}`, 400, "invalid_request_error", "messages[0].role"},
		{"n=2", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"n":2}`, 400, "invalid_request_error", "n"},
		{"temperature", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"temperature":5}`, 400, "invalid_request_error", "temperature"},
		{"over-long prompt", "/v1/chat/completions", `{"messages":[{"role":"user","content":"` + long + `"}]}`, 400, "invalid_request_error", "messages"},
		{"prompt + max_tokens too long", "/v1/completions", `{"prompt":"hi","max_tokens":1000}`, 400, "invalid_request_error", "max_tokens"},
		{"bad tool_choice", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"tool_choice":"always"}`, 400, "invalid_request_error", "tool_choice"},
		{"named tool missing", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}}}`, 400, "invalid_request_error", "tool_choice"},
		{"completions without prompt", "/v1/completions", `{}`, 400, "invalid_request_error", "prompt"},
		{"responses without input", "/v1/responses", `{}`, 400, "invalid_request_error", "input"},
		{"unknown endpoint", "/v1/embeddings", `{}`, 404, "invalid_request_error", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, b := ts.post(t, c.path, c.body)
			if code != c.status {
				t.Fatalf("status %d, want %d: %s", code, c.status, b)
			}
			e := decode[errorBody](t, b)
			if e.Error.Type != c.errType || e.Error.Message == "" {
				t.Fatalf("error %s", b)
			}
			if c.param != "" && (e.Error.Param == nil || *e.Error.Param != c.param) {
				t.Fatalf("param %v, want %q: %s", e.Error.Param, c.param, b)
			}
		})
	}
}

func TestAPIKey(t *testing.T) {
	ts := newTestServer(t, func(c *Config, _ *engine.Options) { c.APIKey = "sekret" })
	code, b := ts.post(t, "/v1/completions", `{"prompt":"x","max_tokens":1}`, "Authorization", "Bearer wrong")
	if e := decode[errorBody](t, b); code != 401 || e.Error.Code == nil || *e.Error.Code != "invalid_api_key" {
		t.Fatalf("%d %s", code, b)
	}
	if code, b := ts.post(t, "/v1/completions", `{"prompt":"x","max_tokens":1}`, "Authorization", "Bearer sekret"); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	if code, _ := ts.get(t, "/health"); code != 200 {
		t.Fatal("health needs no key")
	}
}

func TestQueueFull(t *testing.T) {
	ts := newTestServer(t, func(_ *Config, o *engine.Options) { o.MaxSeqs, o.MaxQueue = 1, 0 })
	// With no queue, a request arriving while another runs is refused.
	done := make(chan struct{})
	go func() {
		ts.post(t, "/v1/completions", `{"prompt":"x","max_tokens":200}`)
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for ts.eng.Stats().Running == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	code, b := ts.post(t, "/v1/completions", `{"prompt":"x","max_tokens":1}`)
	if code != 429 || decode[errorBody](t, b).Error.Type != "rate_limit_error" {
		t.Fatalf("%d %s", code, b)
	}
	<-done
}

// A client that goes away has its sequence cancelled and its cache freed.
func TestDisconnectFreesCache(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/chat/completions", strings.NewReader(`{"messages":[{"role":"user","content":"x"}],"max_tokens":1500,"stream":true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	br.ReadString('\n') // the first chunk arrived: the request is running
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for st := ts.eng.Stats(); st.Running != 0 || st.KVReserved != 0; st = ts.eng.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("not freed after disconnect: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code, _ := ts.get(t, "/health"); code != 200 {
		t.Fatal("unhealthy after a disconnect")
	}
}

func TestMetrics(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.post(t, "/v1/completions", `{"prompt":"hello","max_tokens":3}`)
	ts.post(t, "/v1/completions", `{"prompt":`)
	_, b := ts.get(t, "/metrics")
	for _, want := range []string{
		`gptoss_requests_total{endpoint="completions",status="200"} 1`,
		`gptoss_requests_total{endpoint="completions",status="400"} 1`,
		"gptoss_generation_tokens_total 3",
		"gptoss_prompt_tokens_total 1",
		"gptoss_time_to_first_token_seconds_count 1",
		"gptoss_inter_token_latency_seconds_count 2",
		"gptoss_num_requests_running 0",
		"gptoss_num_requests_waiting 0",
		"gptoss_kv_cache_usage_ratio",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestDrain(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.srv.Drain()
	if code, _ := ts.get(t, "/health"); code != 503 {
		t.Fatalf("health while draining: %d", code)
	}
	if code, _ := ts.post(t, "/v1/completions", `{"prompt":"x"}`); code != 503 {
		t.Fatalf("request while draining: %d", code)
	}
}
