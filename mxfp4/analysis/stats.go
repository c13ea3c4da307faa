package analysis

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/gptoss/gptoss/mxfp4"
)

// Stats describes one MXFP4 tensor (a blocks/scales pair).
type Stats struct {
	Name   string // the pair's base name, e.g. model.layers.0.mlp.experts.gate_up_proj
	Shape  []int  // of the blocks tensor: [..., rows, groups, 16]
	Blocks int64  // 32-element blocks
	Bytes  int64  // blocks + scales bytes as stored
	// ScaleBytes[s] counts the blocks with E8M0 scale byte s (exponent s−127).
	ScaleBytes [256]int64
	// Codes[c] counts the elements with 4-bit code c (bit 3 = sign).
	Codes [16]int64
	// Saturated counts the blocks whose largest magnitude is code ±6 (7 or
	// 15). The OCP rule maps a block's absmax to 4 or 6, so this is the share
	// of blocks whose absmax was rounded to the top of the E2M1 range.
	Saturated int64
}

// Add accumulates blocks (16 bytes per block) and their scales.
func (s *Stats) Add(blocks, scales []byte) error {
	if len(blocks) != len(scales)*mxfp4.BlockBytes {
		return fmt.Errorf("analysis: %s: %d block bytes for %d scales, want %d", s.Name, len(blocks), len(scales), len(scales)*mxfp4.BlockBytes)
	}
	for _, sc := range scales {
		s.ScaleBytes[sc]++
	}
	for g := range scales {
		var sat bool
		for _, b := range blocks[g*mxfp4.BlockBytes : (g+1)*mxfp4.BlockBytes] {
			s.Codes[b&0x0F]++
			s.Codes[b>>4]++
			sat = sat || b&0x07 == 0x07 || b&0x70 == 0x70
		}
		if sat {
			s.Saturated++
		}
	}
	s.Blocks += int64(len(scales))
	s.Bytes += int64(len(blocks) + len(scales))
	return nil
}

// SaturatedShare is Saturated / Blocks (0 for no blocks).
func (s *Stats) SaturatedShare() float64 {
	if s.Blocks == 0 {
		return 0
	}
	return float64(s.Saturated) / float64(s.Blocks)
}

// ExponentCount is one bin of the scale histogram.
type ExponentCount struct {
	Exponent int   `json:"exponent"` // scale = 2^Exponent (byte − 127)
	Blocks   int64 `json:"blocks"`
}

// ScaleHistogram lists the non-empty bins of the scale exponents,
// ascending.
func (s *Stats) ScaleHistogram() []ExponentCount {
	var out []ExponentCount
	for b, n := range s.ScaleBytes {
		if n > 0 {
			out = append(out, ExponentCount{Exponent: b - 127, Blocks: n})
		}
	}
	return out
}

// MarshalJSON writes the histogram bins rather than 256 mostly-zero counts.
func (s *Stats) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name           string          `json:"name"`
		Shape          []int           `json:"shape"`
		Blocks         int64           `json:"blocks"`
		Bytes          int64           `json:"bytes"`
		ScaleExponents []ExponentCount `json:"scale_exponents"`
		Codes          [16]int64       `json:"codes"`
		Saturated      int64           `json:"saturated_blocks"`
		SaturatedShare float64         `json:"saturated_share"`
	}{s.Name, s.Shape, s.Blocks, s.Bytes, s.ScaleHistogram(), s.Codes, s.Saturated, s.SaturatedShare()})
}

// Merge adds o's counts to s (for a total over tensors).
func (s *Stats) Merge(o *Stats) {
	s.Blocks += o.Blocks
	s.Bytes += o.Bytes
	s.Saturated += o.Saturated
	for i := range s.ScaleBytes {
		s.ScaleBytes[i] += o.ScaleBytes[i]
	}
	for i := range s.Codes {
		s.Codes[i] += o.Codes[i]
	}
}

// mxfp4Pair is an MXFP4 tensor's base name and its two stored names.
type mxfp4Pair struct{ base, blocks, scales string }

// mxfp4Pairs finds the blocks/scales pairs among names, in both layouts'
// spellings (HF "x_blocks"/"x_scales", original "x.blocks"/"x.scales").
func mxfp4Pairs(s *Store) []mxfp4Pair {
	var out []mxfp4Pair
	for _, n := range s.Names() {
		for _, sep := range []string{"_", "."} {
			if base, ok := strings.CutSuffix(n, sep+"blocks"); ok && s.Has(base+sep+"scales") {
				out = append(out, mxfp4Pair{base, n, base + sep + "scales"})
			}
		}
	}
	return out
}

// MatchName reports whether name matches pattern: a path.Match glob when
// the pattern has glob characters, else a substring; "" matches all.
func MatchName(pattern, name string) (bool, error) {
	if pattern == "" {
		return true, nil
	}
	if strings.ContainsAny(pattern, "*?[") {
		ok, err := path.Match(pattern, name)
		if err != nil {
			return false, fmt.Errorf("analysis: pattern %q: %w", pattern, err)
		}
		return ok, nil
	}
	return strings.Contains(name, pattern), nil
}

// CheckpointStats computes Stats for every MXFP4 tensor of the store whose
// base name matches pattern (see MatchName), in name order.
func CheckpointStats(s *Store, pattern string) ([]*Stats, error) {
	var out []*Stats
	for _, p := range mxfp4Pairs(s) {
		ok, err := MatchName(pattern, p.base)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		bt, err := s.Tensor(p.blocks)
		if err != nil {
			return nil, err
		}
		st, err := s.Tensor(p.scales)
		if err != nil {
			return nil, err
		}
		nb := len(bt.Shape)
		if bt.DType != "U8" || st.DType != "U8" || nb < 2 || bt.Shape[nb-1] != mxfp4.BlockBytes ||
			!slices.Equal(bt.Shape[:nb-1], st.Shape) {
			return nil, fmt.Errorf("analysis: %s: blocks %s %v and scales %s %v are not an MXFP4 pair", p.base, bt.DType, bt.Shape, st.DType, st.Shape)
		}
		stats := &Stats{Name: p.base, Shape: bt.Shape}
		if err := stats.Add(bt.Data, st.Data); err != nil {
			return nil, err
		}
		out = append(out, stats)
	}
	return out, nil
}
