package synth

import (
	"fmt"
	"math"

	"github.com/gptoss/gptoss/loader"
)

// bf16 rounds f to bfloat16 (the top 16 bits of the float32) to nearest,
// ties to even. NaN stays NaN (quieted) instead of rounding into Inf.
func bf16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7FFFFFFF > 0x7F800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7FFF + (b>>16)&1) >> 16)
}

// safetensorsHeader renders the header for es, laid out back to back in
// the given order, in the format loader reads (loader.EncodeHeader).
func safetensorsHeader(es []entry) ([]byte, error) {
	hs := make([]loader.HeaderEntry, len(es))
	for i, e := range es {
		hs[i] = loader.HeaderEntry{Name: e.Name, DType: loader.DType(e.DType), Shape: e.Shape}
	}
	return loader.EncodeHeader(hs)
}

// shard is one output safetensors file.
type shard struct {
	path    string // relative to the output directory
	entries []entry
	size    int64 // file size: header + data
}

// planShards splits es (in order) greedily into files whose data stays
// within max bytes; a tensor larger than max gets a file of its own; max ≤ 0
// means one file.
func planShards(es []entry, max int64) [][]entry {
	var out [][]entry
	var cur []entry
	var curSize int64
	for _, e := range es {
		if max > 0 && len(cur) > 0 && curSize+e.Size() > max {
			out = append(out, cur)
			cur, curSize = nil, 0
		}
		cur = append(cur, e)
		curSize += e.Size()
	}
	return append(out, cur)
}

// hfShardName reproduces the released HF repo's quirk: shards numbered from
// 0 and "of" the last index, so 3 files say "-of-00002".
func hfShardName(i, n int) string {
	if n == 1 {
		return "model.safetensors"
	}
	return fmt.Sprintf("model-%05d-of-%05d.safetensors", i, n-1)
}

// originalShardName reproduces 120b's original/ naming: a double dash and
// 1-based numbering "of" the count.
func originalShardName(i, n int) string {
	if n == 1 {
		return "model.safetensors"
	}
	return fmt.Sprintf("model--%05d-of-%05d.safetensors", i+1, n)
}

type indexFile struct {
	Metadata struct {
		TotalSize int64 `json:"total_size"`
	} `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// indexJSON renders model.safetensors.index.json: total_size is the sum of
// tensor data sizes (headers excluded), as HF computes it.
func indexJSON(shards []shard, dir string) ([]byte, error) {
	var idx indexFile
	idx.WeightMap = map[string]string{}
	for _, s := range shards {
		base := s.path[len(dir):]
		for _, e := range s.entries {
			idx.Metadata.TotalSize += e.Size()
			idx.WeightMap[e.Name] = base
		}
	}
	return marshalFile(idx, "  ")
}
