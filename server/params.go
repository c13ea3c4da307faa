package server

import (
	"encoding/json"
	"fmt"

	"github.com/gptoss/gptoss/engine"
)

// samplingParams are the sampling fields shared by the chat, completions
// and responses requests.
type samplingParams struct {
	Temperature      *float64 `json:"temperature"`
	TopP             *float64 `json:"top_p"`
	TopK             *int     `json:"top_k"`
	MinP             *float64 `json:"min_p"`
	Seed             *int64   `json:"seed"`
	FrequencyPenalty *float64 `json:"frequency_penalty"`
	PresencePenalty  *float64 `json:"presence_penalty"`
	N                *int     `json:"n"`
	Stop             stopList `json:"stop"`
	// vLLM's extensions, used by benchmark clients to fix output lengths.
	IgnoreEOS bool `json:"ignore_eos"`
	MinTokens int  `json:"min_tokens"`
}

// stopTokens are the tokens that end generation: none with ignore_eos.
func (p samplingParams) stopTokens(stops []int32) []int32 {
	if p.IgnoreEOS {
		return nil
	}
	return stops
}

func (p samplingParams) sampling() (engine.Sampling, *apiError) {
	s := engine.DefaultSampling()
	if p.Temperature != nil {
		s.Temperature = *p.Temperature
	}
	if p.TopP != nil {
		s.TopP = *p.TopP
	}
	if p.TopK != nil {
		s.TopK = *p.TopK
	}
	if p.MinP != nil {
		s.MinP = *p.MinP
	}
	if p.FrequencyPenalty != nil {
		s.FrequencyPenalty = *p.FrequencyPenalty
	}
	if p.PresencePenalty != nil {
		s.PresencePenalty = *p.PresencePenalty
	}
	if p.Seed != nil {
		seed := uint64(*p.Seed)
		s.Seed = &seed
	}
	if p.N != nil && *p.N != 1 {
		return s, invalidRequest("n", "n=%d is not supported: this server returns exactly one choice (n=1)", *p.N)
	}
	if len(p.Stop) > 4 {
		return s, invalidRequest("stop", "at most 4 stop sequences are allowed, got %d", len(p.Stop))
	}
	if err := s.Validate(); err != nil {
		return s, submitError(err)
	}
	return s, nil
}

// maxTokens picks the generation limit: the request's, else what the
// context leaves (capped by the server default).
func (s *Server) maxTokens(req *int, promptLen int, param string) (int, *apiError) {
	if req != nil {
		if *req <= 0 {
			return 0, invalidRequest(param, "%s must be at least 1, got %d", param, *req)
		}
		return *req, nil
	}
	left := s.cfg.MaxModelLen - promptLen
	if left <= 0 {
		return 0, invalidRequest("messages", "this model's maximum context length is %d tokens, but the prompt has %d", s.cfg.MaxModelLen, promptLen)
	}
	return min(left, s.cfg.DefaultMaxTokens), nil
}

// stopList accepts a string or an array of strings.
type stopList []string

func (l *stopList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		if one != "" {
			*l = stopList{one}
		}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return &fieldError{"stop", fmt.Sprintf("'stop' must be a string or an array of strings, got %s", b)}
	}
	*l = many
	return nil
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func usageOf(g generation) usage {
	return usage{PromptTokens: g.prompt, CompletionTokens: g.completion, TotalTokens: g.prompt + g.completion}
}
