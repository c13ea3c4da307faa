package engine

import (
	"context"
	"sync"
)

// Stream delivers one request's events in order. The engine never blocks
// on a slow reader: events queue until read.
type Stream struct {
	mu     sync.Mutex
	events []Event
	notify chan struct{}
	ended  bool // the Done event has been read
}

func newStream() *Stream { return &Stream{notify: make(chan struct{}, 1)} }

func (s *Stream) push(ev Event) {
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Next returns the next event, waiting for it until ctx ends. After the
// Done event it returns a Done event again.
func (s *Stream) Next(ctx context.Context) (Event, error) {
	for {
		s.mu.Lock()
		if len(s.events) > 0 {
			ev := s.events[0]
			s.events = s.events[1:]
			if ev.Done {
				s.ended = true
			}
			s.mu.Unlock()
			return ev, nil
		}
		if s.ended {
			s.mu.Unlock()
			return Event{Done: true}, nil
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}
