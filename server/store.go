package server

import (
	"container/list"
	"sync"
)

// responseStore keeps finished responses for previous_response_id,
// bounded by count and by bytes; the oldest are evicted first.
type responseStore struct {
	mu       sync.Mutex
	maxCount int
	maxBytes int64
	bytes    int64
	order    *list.List // of *storedResponse, oldest first
	byID     map[string]*list.Element
}

type storedResponse struct {
	id    string
	body  []byte // the response object as returned
	conv  []byte // the conversation it continues, as JSON items
	bytes int64
}

func newResponseStore(count int, bytes int64) *responseStore {
	if count <= 0 {
		count = 1000
	}
	if bytes <= 0 {
		bytes = 64 << 20
	}
	return &responseStore{maxCount: count, maxBytes: bytes, order: list.New(), byID: map[string]*list.Element{}}
}

func (s *responseStore) put(r *storedResponse) {
	r.bytes = int64(len(r.body) + len(r.conv) + len(r.id))
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.byID[r.id]; ok {
		s.remove(old)
	}
	if r.bytes > s.maxBytes {
		return // larger than the whole store: not kept
	}
	s.byID[r.id] = s.order.PushBack(r)
	s.bytes += r.bytes
	for s.order.Len() > s.maxCount || s.bytes > s.maxBytes {
		s.remove(s.order.Front())
	}
}

func (s *responseStore) remove(e *list.Element) {
	r := s.order.Remove(e).(*storedResponse)
	delete(s.byID, r.id)
	s.bytes -= r.bytes
}

func (s *responseStore) get(id string) (*storedResponse, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	return e.Value.(*storedResponse), true
}

func (s *responseStore) delete(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[id]
	if ok {
		s.remove(e)
	}
	return ok
}
