// Package server is the OpenAI-compatible HTTP API: chat completions,
// completions, responses, models, health and Prometheus metrics, on top of
// the continuous-batching engine.
package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gptoss/gptoss/engine"
	"github.com/gptoss/gptoss/loader"
	"github.com/gptoss/gptoss/tokenizer"
)

// Config describes what the server serves.
type Config struct {
	ModelName     string // the id clients send as "model"
	RandomWeights bool   // a synthetic checkpoint: said in /v1/models
	APIKey        string // when set, /v1/* needs "Authorization: Bearer KEY"
	MaxModelLen   int
	// DefaultMaxTokens caps generation when a request sets no limit.
	DefaultMaxTokens int
	// EOSTokens end a raw completion (the checkpoint's eos ids);
	// AssistantStops end an assistant turn (harmony: <|return|>, <|call|>).
	EOSTokens      []int32
	AssistantStops []int32
	// ResponseStoreCount and ResponseStoreBytes bound the in-memory store
	// behind previous_response_id; the oldest responses are evicted.
	ResponseStoreCount int
	ResponseStoreBytes int64
}

// Server handles the API. Create it with New and mount Handler.
type Server struct {
	cfg      Config
	eng      *engine.Engine
	tok      *tokenizer.Tokenizer
	mcfg     loader.Config
	metrics  *metrics
	registry *prometheus.Registry
	store    *responseStore
	created  int64
	draining atomic.Bool
}

// New makes a server around a running engine.
func New(cfg Config, eng *engine.Engine, tok *tokenizer.Tokenizer, mcfg loader.Config) *Server {
	if cfg.DefaultMaxTokens <= 0 {
		cfg.DefaultMaxTokens = cfg.MaxModelLen
	}
	reg := prometheus.NewRegistry()
	return &Server{
		cfg: cfg, eng: eng, tok: tok, mcfg: mcfg,
		metrics:  newMetrics(reg, eng.Stats),
		registry: reg,
		store:    newResponseStore(cfg.ResponseStoreCount, cfg.ResponseStoreBytes),
		created:  time.Now().Unix(),
	}
}

// Drain makes new API requests fail with 503 while in-flight ones finish.
func (s *Server) Drain() { s.draining.Store(true) }

// Handler routes the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	api := func(endpoint string, h func(http.ResponseWriter, *http.Request) *apiError) http.Handler {
		return s.instrument(endpoint, s.authorize(h))
	}
	mux.Handle("GET /v1/models", api("models", s.handleModels))
	mux.Handle("GET /v1/models/{id}", api("models", s.handleModel))
	mux.Handle("POST /v1/chat/completions", api("chat_completions", s.handleChat))
	mux.Handle("POST /v1/completions", api("completions", s.handleCompletions))
	mux.Handle("POST /v1/responses", api("responses", s.handleResponses))
	mux.Handle("GET /v1/responses/{id}", api("responses", s.handleGetResponse))
	mux.Handle("DELETE /v1/responses/{id}", api("responses", s.handleDeleteResponse))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.Handle("/", api("other", func(w http.ResponseWriter, r *http.Request) *apiError {
		return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error",
			Message: fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path)}
	}))
	return mux
}

// statusWriter records the status for metrics and keeps http.Flusher
// reachable for streaming.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) instrument(endpoint string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		s.metrics.requests.WithLabelValues(endpoint, strconv.Itoa(sw.status)).Inc()
	})
}

func (s *Server) authorize(h func(http.ResponseWriter, *http.Request) *apiError) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.APIKey != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.APIKey)) != 1 {
				writeError(w, &apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: strp("invalid_api_key"),
					Message: "Incorrect API key provided."})
				return
			}
		}
		if s.draining.Load() {
			writeError(w, &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Message: "the server is shutting down"})
			return
		}
		if err := h(w, r); err != nil {
			writeError(w, err)
		}
	})
}

// checkModel accepts the served name (and an empty one, as vLLM does).
func (s *Server) checkModel(name string) *apiError {
	if name != "" && name != s.cfg.ModelName {
		return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Param: strp("model"), Code: strp("model_not_found"),
			Message: fmt.Sprintf("The model '%s' does not exist. This server serves '%s'.", name, s.cfg.ModelName)}
	}
	return nil
}

type modelCard struct {
	ID          string `json:"id"`
	Object      string `json:"object"`
	Created     int64  `json:"created"`
	OwnedBy     string `json:"owned_by"`
	MaxModelLen int    `json:"max_model_len"`
	// Description says when the weights are random (a synthetic checkpoint).
	Description string `json:"description,omitempty"`
}

func (s *Server) card() modelCard {
	c := modelCard{ID: s.cfg.ModelName, Object: "model", Created: s.created, OwnedBy: "gptoss", MaxModelLen: s.cfg.MaxModelLen}
	if s.cfg.RandomWeights {
		c.Description = "synthetic checkpoint with random weights (gptoss synth): its text means nothing"
	}
	return c
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) *apiError {
	writeJSON(w, map[string]any{"object": "list", "data": []modelCard{s.card()}})
	return nil
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) *apiError {
	if err := s.checkModel(r.PathValue("id")); err != nil {
		return err
	}
	writeJSON(w, s.card())
	return nil
}

// submitError maps engine admission errors to HTTP errors.
func submitError(err error) *apiError {
	var pe *engine.ParamError
	switch {
	case errors.As(err, &pe):
		return invalidRequest(pe.Param, "%s", pe.Message)
	case errors.Is(err, engine.ErrQueueFull):
		return &apiError{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Message: "the server is at capacity; retry later"}
	case errors.Is(err, engine.ErrClosed):
		return &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Message: "the server is shutting down"}
	}
	return &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: err.Error()}
}

// generation runs one request on the engine and reports each token to
// onToken, which returns false to stop early (a stop string matched).
type generation struct {
	finish     string
	prompt     int
	completion int
}

func (s *Server) generate(ctx context.Context, start time.Time, req engine.Request, onToken func(engine.Token) bool) (generation, *apiError) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.eng.Submit(ctx, req)
	if err != nil {
		return generation{}, submitError(err)
	}
	g := generation{prompt: len(req.Prompt)}
	s.metrics.promptTokens.Add(float64(len(req.Prompt)))
	last := start
	for {
		ev, err := stream.Next(ctx)
		if err != nil {
			return g, &apiError{Status: 499, Type: "server_error", Message: "the client went away"}
		}
		if ev.Done {
			s.metrics.requestLatency.Observe(time.Since(start).Seconds())
			switch ev.FinishReason {
			case engine.FinishStop, engine.FinishLength:
				g.finish = ev.FinishReason
				return g, nil
			case engine.FinishCancelled:
				return g, &apiError{Status: 499, Type: "server_error", Message: "the request was cancelled"}
			}
			return g, &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: fmt.Sprintf("generation failed: %v", ev.Err)}
		}
		now := time.Now()
		if g.completion == 0 {
			s.metrics.ttft.Observe(now.Sub(start).Seconds())
		} else {
			s.metrics.interToken.Observe(now.Sub(last).Seconds())
		}
		last = now
		g.completion++
		s.metrics.generated.Inc()
		if !onToken(ev.Token) {
			g.finish = engine.FinishStop
			return g, nil
		}
	}
}

func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
