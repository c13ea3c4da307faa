package loader

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The two checkpoint layouts.
const (
	LayoutHF       = "hf"       // config.json + model*.safetensors, model.layers.N.… names
	LayoutOriginal = "original" // OpenAI's original/: fused qkv, block.N.… names
)

// The weight files of a checkpoint directory: one file, or shards listed
// by an index.
const (
	SingleFile = "model.safetensors"
	IndexFile  = "model.safetensors.index.json"
)

// Checkpoint is an opened checkpoint: its configuration and every weight,
// mapped and checked against the configuration. It is read-only and safe for
// concurrent use until Close. In the original layout Q, K and V (and their
// biases) are row windows of the fused qkv tensor, named e.g.
// "block.0.attn.qkv.weight[k]".
type Checkpoint struct {
	// Dir is the directory the weights were read from: the repository root
	// for the HF layout, the original/ directory for the original layout.
	Dir     string
	Layout  string // LayoutHF or LayoutOriginal
	Config  Config
	Weights Weights

	files   []*File          // each shard once, in index order
	byName  map[string]*File // where each tensor lives (from the index when sharded)
	relName map[*File]string // shard path relative to Dir, for listings
}

// Open opens the checkpoint in dir, choosing the layout from what is there:
// a directory holding OpenAI's config (num_experts, no model_type) plus
// weights is read as the original layout; one holding config.json plus
// model.safetensors or model.safetensors.index.json as the HF layout; a
// directory with neither but an original/ subdirectory as that original/.
func Open(dir string) (*Checkpoint, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("loader: %s: not a directory", dir)
	}
	if hasConfig(dir) && hasWeights(dir) {
		o, err := readJSONObject(filepath.Join(dir, "config.json"))
		if err != nil {
			return nil, err
		}
		if isOriginalConfig(o) {
			return OpenLayout(dir, LayoutOriginal)
		}
		return OpenLayout(dir, LayoutHF)
	}
	if orig := filepath.Join(dir, "original"); hasConfig(orig) && hasWeights(orig) {
		return OpenLayout(dir, LayoutOriginal)
	}
	return nil, fmt.Errorf("loader: %s: no checkpoint found: want config.json with %s or %s, or an original/ directory holding them",
		dir, SingleFile, IndexFile)
}

// OpenLayout opens dir as the given layout (LayoutHF or LayoutOriginal).
// For LayoutOriginal dir may be the repository root (original/ is then
// used) or the original/ directory itself.
func OpenLayout(dir, layout string) (*Checkpoint, error) {
	switch layout {
	case LayoutHF:
		cfg, err := parseHFConfig(dir)
		if err != nil {
			return nil, err
		}
		return openWeights(dir, layout, cfg)
	case LayoutOriginal:
		wdir := dir
		if sub := filepath.Join(dir, "original"); hasConfig(sub) {
			wdir = sub
		}
		// The repository root above original/ may hold the HF configs
		// with the stop ids.
		cfg, err := parseOriginalConfig(wdir, filepath.Dir(filepath.Clean(wdir)))
		if err != nil {
			return nil, err
		}
		return openWeights(wdir, layout, cfg)
	}
	return nil, fmt.Errorf("loader: unknown layout %q (want %q or %q)", layout, LayoutHF, LayoutOriginal)
}

func hasConfig(dir string) bool { return isFile(filepath.Join(dir, "config.json")) }

func hasWeights(dir string) bool {
	return isFile(filepath.Join(dir, IndexFile)) || isFile(filepath.Join(dir, SingleFile))
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// openWeights maps the safetensors files of dir and builds the weight set.
// The index, when present, is the only source of truth for which shard
// holds what: shard names follow no usable rule (gpt-oss-20b has three
// files named "-of-00002").
func openWeights(dir, layout string, cfg Config) (_ *Checkpoint, err error) {
	c := &Checkpoint{Dir: dir, Layout: layout, Config: cfg, byName: map[string]*File{}, relName: map[*File]string{}}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	open := func(rel string) (*File, error) {
		f, err := OpenFile(filepath.Join(dir, rel))
		if err != nil {
			return nil, err
		}
		c.files = append(c.files, f)
		c.relName[f] = rel
		return f, nil
	}
	indexPath := filepath.Join(dir, IndexFile)
	switch {
	case isFile(indexPath):
		wm, err := ReadIndex(indexPath)
		if err != nil {
			return nil, err
		}
		shards := map[string]*File{}
		names := make([]string, 0, len(wm))
		for name := range wm {
			names = append(names, name)
		}
		slices.Sort(names) // deterministic open order and error messages
		for _, name := range names {
			rel := filepath.Clean(wm[name])
			f, ok := shards[rel]
			if !ok {
				if f, err = open(rel); err != nil {
					return nil, err
				}
				shards[rel] = f
			}
			if _, ok := f.Info(name); !ok {
				return nil, fmt.Errorf("loader: %s: %s maps %s to %s, which has no such tensor", name, IndexFile, name, rel)
			}
			c.byName[name] = f
		}
	case isFile(filepath.Join(dir, SingleFile)):
		f, err := open(SingleFile)
		if err != nil {
			return nil, err
		}
		for _, ti := range f.infos {
			c.byName[ti.Name] = f
		}
	default:
		return nil, fmt.Errorf("loader: %s: neither %s nor %s", dir, IndexFile, SingleFile)
	}
	w, err := mapWeights(c, layout, &cfg)
	if err != nil {
		return nil, err
	}
	c.Weights = w
	return c, nil
}

// ReadIndex returns the weight_map of a model.safetensors.index.json.
func ReadIndex(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("loader: %s: %w", path, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("loader: %s: empty or missing weight_map", path)
	}
	for name, file := range idx.WeightMap {
		// Shards must live inside the checkpoint directory.
		if !filepath.IsLocal(file) || !strings.HasSuffix(file, ".safetensors") {
			return nil, fmt.Errorf("loader: %s: weight_map[%q] = %q is not a .safetensors file inside the checkpoint directory", path, name, file)
		}
	}
	return idx.WeightMap, nil
}

// Tensor returns a stored tensor by its name in the checkpoint's own layout
// (e.g. "block.0.attn.qkv.weight" for the original layout).
func (c *Checkpoint) Tensor(name string) (Tensor, error) {
	f, ok := c.byName[name]
	if !ok {
		return Tensor{}, fmt.Errorf("loader: %s: no such tensor in %s", name, c.Dir)
	}
	t, ok := f.Tensor(name)
	if !ok {
		return Tensor{}, fmt.Errorf("loader: %s: %s is closed", name, f.Path)
	}
	return t, nil
}

// TensorEntry is one stored tensor as listed by Checkpoint.Tensors.
type TensorEntry struct {
	TensorInfo
	File string // shard path relative to Checkpoint.Dir
}

// Tensors lists every tensor of every mapped file, sorted by name (then
// file), for inspection. Tensors a shard holds but the index assigns
// elsewhere are listed too.
func (c *Checkpoint) Tensors() []TensorEntry {
	var out []TensorEntry
	for _, f := range c.files {
		for _, ti := range f.infos {
			out = append(out, TensorEntry{TensorInfo: ti.clone(), File: c.relName[f]})
		}
	}
	slices.SortFunc(out, func(a, b TensorEntry) int {
		if n := strings.Compare(a.Name, b.Name); n != 0 {
			return n
		}
		return strings.Compare(a.File, b.File)
	})
	return out
}

// Files lists the mapped safetensors paths relative to Dir.
func (c *Checkpoint) Files() []string {
	out := make([]string, len(c.files))
	for i, f := range c.files {
		out[i] = c.relName[f]
	}
	return out
}

// BytesPerDecodedToken is Config.BytesPerDecodedToken for this checkpoint.
func (c *Checkpoint) BytesPerDecodedToken() int64 { return c.Config.BytesPerDecodedToken() }

// Close unmaps every file; all Tensor data from the checkpoint becomes
// invalid. Closing twice is harmless.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, f := range c.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
