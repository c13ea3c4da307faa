package server

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gptoss/gptoss/engine"
)

type completionRequest struct {
	Model  string          `json:"model"`
	Prompt json.RawMessage `json:"prompt"`
	samplingParams
	MaxTokens     *int           `json:"max_tokens"`
	Logprobs      *int           `json:"logprobs"`
	Echo          bool           `json:"echo"`
	Stream        bool           `json:"stream"`
	StreamOptions *streamOptions `json:"stream_options"`
}

type completionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float32            `json:"token_logprobs"`
	TopLogprobs   []map[string]float32 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

type completionChoice struct {
	Index        int                 `json:"index"`
	Text         string              `json:"text"`
	Logprobs     *completionLogprobs `json:"logprobs"`
	FinishReason *string             `json:"finish_reason"`
}

type completionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage,omitempty"`
}

// promptIDs accepts a string, an array of one string, token ids, or an
// array of one token-id array. Request text is encoded as ordinary text:
// it can never produce a special token.
func (s *Server) promptIDs(raw json.RawMessage) ([]int32, *apiError) {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return s.encode(text), nil
	}
	var ids []int32
	if json.Unmarshal(raw, &ids) == nil {
		return ids, nil
	}
	var texts []string
	if json.Unmarshal(raw, &texts) == nil && len(texts) == 1 {
		return s.encode(texts[0]), nil
	}
	var idLists [][]int32
	if json.Unmarshal(raw, &idLists) == nil && len(idLists) == 1 {
		return idLists[0], nil
	}
	if len(texts) > 1 || len(idLists) > 1 {
		return nil, invalidRequest("prompt", "only one prompt per request is supported")
	}
	return nil, invalidRequest("prompt", "'prompt' must be a string, an array of token ids, or an array holding one of those")
}

func (s *Server) encode(text string) []int32 {
	ids := s.tok.Encode(text)
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}

func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) *apiError {
	start := time.Now()
	var req completionRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.checkModel(req.Model); err != nil {
		return err
	}
	if len(req.Prompt) == 0 || string(req.Prompt) == "null" {
		return invalidRequest("prompt", "'prompt' is required")
	}
	prompt, aerr := s.promptIDs(req.Prompt)
	if aerr != nil {
		return aerr
	}
	if len(prompt) == 0 {
		return invalidRequest("prompt", "the prompt is empty")
	}
	samp, aerr := req.sampling()
	if aerr != nil {
		return aerr
	}
	if req.Logprobs != nil {
		if *req.Logprobs < 0 || *req.Logprobs > 5 {
			return invalidRequest("logprobs", "logprobs must be in [0, 5], got %d", *req.Logprobs)
		}
		samp.Logprobs, samp.TopLogprobs = true, *req.Logprobs
	}
	maxTok := 16 // OpenAI's default for completions
	if req.MaxTokens != nil {
		if maxTok, aerr = s.maxTokens(req.MaxTokens, len(prompt), "max_tokens"); aerr != nil {
			return aerr
		}
	}
	ereq := engine.Request{Prompt: prompt, MaxTokens: maxTok, Sampling: samp, StopTokens: req.stopTokens(s.cfg.EOSTokens), MinTokens: req.MinTokens}

	id, created := newID("cmpl-"), time.Now().Unix()
	var text []byte
	lp := &completionLogprobs{}
	if req.Echo {
		text = append(text, s.tok.Decode(toInts(prompt))...)
	}
	dec := s.tok.NewStreamDecoder()
	stop := stopMatcher{stops: req.Stop}
	var out *sse
	if req.Stream {
		out = newSSE(w)
	}
	emit := func(piece string, tok *engine.Token, finish *string) {
		if out != nil && piece == "" && finish == nil && (tok == nil || !samp.Logprobs) {
			return // nothing to show yet (text held back at a possible stop string)
		}
		if out == nil {
			text = append(text, piece...)
			return
		}
		ch := completionChoice{Text: piece, FinishReason: finish}
		if tok != nil && samp.Logprobs {
			ch.Logprobs = s.completionLogprobs(&completionLogprobs{}, *tok, piece, 0)
		}
		out.data(completionResponse{ID: id, Object: "text_completion", Created: created, Model: s.cfg.ModelName, Choices: []completionChoice{ch}})
	}
	offset := len(text)
	stoppedByString := false
	g, aerr := s.generate(r.Context(), start, ereq, func(tok engine.Token) bool {
		if s.tok.IsSpecial(int(tok.ID)) && isStopToken(tok.ID, s.cfg.EOSTokens) {
			return true // the eos token ends the text; it is not part of it
		}
		piece, stopped := stop.push(dec.Add(int(tok.ID)))
		if samp.Logprobs && out == nil {
			s.completionLogprobs(lp, tok, piece, offset)
		}
		offset += len(piece)
		emit(piece, &tok, nil)
		stoppedByString = stopped
		return !stopped
	})
	if aerr != nil {
		if out != nil && out.started {
			out.data(map[string]any{"error": aerr})
			return nil
		}
		return aerr
	}
	if !stoppedByString {
		emit(stop.flush()+dec.Flush(), nil, nil)
	}
	finish := g.finish
	u := usageOf(g)
	if out != nil {
		emit("", nil, &finish)
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			out.data(completionResponse{ID: id, Object: "text_completion", Created: created, Model: s.cfg.ModelName, Choices: []completionChoice{}, Usage: &u})
		}
		out.done()
		return nil
	}
	ch := completionChoice{Text: string(text), FinishReason: &finish}
	if samp.Logprobs {
		ch.Logprobs = lp
	}
	writeJSON(w, completionResponse{ID: id, Object: "text_completion", Created: created, Model: s.cfg.ModelName, Choices: []completionChoice{ch}, Usage: &u})
	return nil
}

// completionLogprobs appends one token to the legacy logprobs object.
func (s *Server) completionLogprobs(lp *completionLogprobs, tok engine.Token, piece string, offset int) *completionLogprobs {
	lp.Tokens = append(lp.Tokens, s.tokenText(tok.ID))
	lp.TokenLogprobs = append(lp.TokenLogprobs, tok.Logprob)
	top := make(map[string]float32, len(tok.Top))
	for _, t := range tok.Top {
		top[s.tokenText(t.ID)] = t.Logprob
	}
	lp.TopLogprobs = append(lp.TopLogprobs, top)
	lp.TextOffset = append(lp.TextOffset, offset)
	return lp
}

// tokenText is a token's text for logprobs: its bytes as (possibly
// partial) UTF-8, or a special token's name.
func (s *Server) tokenText(id int32) string {
	return string(s.tok.TokenBytes(int(id)))
}

func isStopToken(id int32, stops []int32) bool {
	for _, s := range stops {
		if s == id {
			return true
		}
	}
	return false
}

func toInts(ids []int32) []int {
	out := make([]int, len(ids))
	for i, v := range ids {
		out[i] = int(v)
	}
	return out
}
