package attention

import "fmt"

// Cache is one sequence's keys (after RoPE) and values for every layer, in
// float32. Sliding layers keep a ring of the last Window positions, so their
// memory never grows; full layers grow with the sequence up to MaxLen.
type Cache struct {
	kvDim  int
	window int
	maxLen int
	length int
	layers []layerCache
}

type layerCache struct {
	ring bool
	k, v []float32 // [capacity][kvDim]
}

// NewCache allocates an empty cache. sliding[l] selects a ring of window
// positions for layer l.
func NewCache(kvDim int, sliding []bool, window, maxLen int) (*Cache, error) {
	if kvDim <= 0 || maxLen <= 0 {
		return nil, fmt.Errorf("attention: cache: kv width %d and max length %d must be positive", kvDim, maxLen)
	}
	c := &Cache{kvDim: kvDim, window: window, maxLen: maxLen, layers: make([]layerCache, len(sliding))}
	for l, s := range sliding {
		if s {
			if window <= 0 {
				return nil, fmt.Errorf("attention: cache: layer %d slides but the window is %d", l, window)
			}
			c.layers[l] = layerCache{ring: true, k: make([]float32, window*kvDim), v: make([]float32, window*kvDim)}
		}
	}
	return c, nil
}

// Len is the number of positions stored.
func (c *Cache) Len() int { return c.length }

// SetLen records that positions 0 … n-1 are stored, or truncates.
func (c *Cache) SetLen(n int) error {
	if n < 0 || n > c.maxLen {
		return fmt.Errorf("attention: cache: length %d outside [0, %d]", n, c.maxLen)
	}
	c.length = n
	return nil
}

// Bytes is the memory held by the cache.
func (c *Cache) Bytes() int64 {
	var n int64
	for _, l := range c.layers {
		n += int64(cap(l.k)+cap(l.v)) * 4
	}
	return n
}

// Free drops the cache's memory.
func (c *Cache) Free() {
	c.layers = nil
	c.length = 0
}

// MaxLen is the largest number of positions the cache accepts.
func (c *Cache) MaxLen() int { return c.maxLen }

// Sliding reports whether layer l keeps only a window of positions.
func (c *Cache) Sliding(layer int) bool { return c.layers[layer].ring }

// Window is the sliding window width.
func (c *Cache) Window() int { return c.window }

func (c *Cache) slot(layer, pos int) int {
	if c.layers[layer].ring {
		return pos % c.window
	}
	return pos
}

// Key returns the stored key of position pos in layer l. The position must
// be stored and, on a sliding layer, within the last Window positions.
func (c *Cache) Key(layer, pos int) []float32 {
	s := c.slot(layer, pos) * c.kvDim
	return c.layers[layer].k[s : s+c.kvDim]
}

// Value returns the stored value of position pos in layer l.
func (c *Cache) Value(layer, pos int) []float32 {
	s := c.slot(layer, pos) * c.kvDim
	return c.layers[layer].v[s : s+c.kvDim]
}

// Store writes the key and value of position pos in layer l, growing a full
// layer's buffers geometrically so that appends are amortised.
func (c *Cache) Store(layer, pos int, k, v []float32) error {
	if pos < 0 || pos >= c.maxLen {
		return fmt.Errorf("attention: cache: position %d outside [0, %d)", pos, c.maxLen)
	}
	l := &c.layers[layer]
	if !l.ring {
		need := (pos + 1) * c.kvDim
		if need > len(l.k) {
			n := max(need, 2*len(l.k), 16*c.kvDim)
			n = min(n, c.maxLen*c.kvDim)
			l.k = append(l.k, make([]float32, n-len(l.k))...)
			l.v = append(l.v, make([]float32, n-len(l.v))...)
		}
	}
	copy(c.Key(layer, pos), k)
	copy(c.Value(layer, pos), v)
	return nil
}
