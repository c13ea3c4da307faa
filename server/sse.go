package server

import (
	"encoding/json"
	"net/http"
	"strings"
)

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// sse writes server-sent events, flushing after each.
type sse struct {
	w       http.ResponseWriter
	f       http.Flusher
	started bool
}

func newSSE(w http.ResponseWriter) *sse {
	f, _ := w.(http.Flusher)
	return &sse{w: w, f: f}
}

func (s *sse) start() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	s.w.WriteHeader(http.StatusOK)
}

// data sends one "data:" event with v as JSON.
func (s *sse) data(v any) {
	s.event("", v)
}

// event sends a named event (the Responses API names its events).
func (s *sse) event(name string, v any) {
	s.start()
	b, _ := json.Marshal(v)
	var sb strings.Builder
	if name != "" {
		sb.WriteString("event: " + name + "\n")
	}
	sb.WriteString("data: ")
	sb.Write(b)
	sb.WriteString("\n\n")
	s.w.Write([]byte(sb.String()))
	if s.f != nil {
		s.f.Flush()
	}
}

func (s *sse) done() {
	s.start()
	s.w.Write([]byte("data: [DONE]\n\n"))
	if s.f != nil {
		s.f.Flush()
	}
}

// stopMatcher holds back generated text that might be the start of a stop
// string, so a stream never shows part of one, and cuts the text where a
// stop string begins.
type stopMatcher struct {
	stops []string
	held  string
}

// push adds text and returns what may be emitted now, and whether a stop
// string was found (then nothing after it is emitted).
func (m *stopMatcher) push(text string) (string, bool) {
	if len(m.stops) == 0 {
		return text, false
	}
	m.held += text
	for _, s := range m.stops {
		if i := strings.Index(m.held, s); i >= 0 {
			out := m.held[:i]
			m.held = ""
			return out, true
		}
	}
	keep := 0
	for _, s := range m.stops {
		for k := min(len(s)-1, len(m.held)); k > keep; k-- {
			if strings.HasSuffix(m.held, s[:k]) {
				keep = k
				break
			}
		}
	}
	out := m.held[:len(m.held)-keep]
	m.held = m.held[len(m.held)-keep:]
	return out, false
}

// flush returns the held text at the end of generation.
func (m *stopMatcher) flush() string {
	out := m.held
	m.held = ""
	return out
}
