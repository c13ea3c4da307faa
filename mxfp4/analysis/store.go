package analysis

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/gptoss/gptoss/loader"
)

// Store is every tensor of a checkpoint directory's safetensors files,
// found through the index when there is one. Unlike loader.Open it does not
// check the tensors against a config, so any gpt-oss-like checkpoint opens,
// the dequantized BF16 variant included. Read-only until Close.
type Store struct {
	Dir    string
	shards []Shard
	files  []*loader.File // parallel to shards
	byName map[string]*loader.File
}

// Shard is one safetensors file of a Store: its path relative to Dir and
// the tensors the index assigns to it, sorted by name.
type Shard struct {
	Path  string
	Names []string
	// Indexed reports whether the checkpoint has an index file.
	Indexed bool
}

// OpenStore opens the safetensors of dir: model.safetensors.index.json and
// its shards, or model.safetensors. A directory holding neither but an
// original/ subdirectory that does is opened as that.
func OpenStore(dir string) (_ *Store, err error) {
	if !hasWeights(dir) && hasWeights(filepath.Join(dir, "original")) {
		dir = filepath.Join(dir, "original")
	}
	s := &Store{Dir: dir, byName: map[string]*loader.File{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	open := func(rel string, names []string, indexed bool) (*loader.File, error) {
		f, err := loader.OpenFile(filepath.Join(dir, rel))
		if err != nil {
			return nil, err
		}
		s.files = append(s.files, f)
		s.shards = append(s.shards, Shard{Path: rel, Names: names, Indexed: indexed})
		return f, nil
	}
	switch {
	case isFile(filepath.Join(dir, loader.IndexFile)):
		wm, err := loader.ReadIndex(filepath.Join(dir, loader.IndexFile))
		if err != nil {
			return nil, err
		}
		byShard := map[string][]string{}
		for name, rel := range wm {
			byShard[rel] = append(byShard[rel], name)
		}
		rels := make([]string, 0, len(byShard))
		for rel := range byShard {
			rels = append(rels, rel)
		}
		slices.Sort(rels) // shard order = name order, as written
		for _, rel := range rels {
			names := byShard[rel]
			slices.Sort(names)
			f, err := open(rel, names, true)
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				if _, ok := f.Info(n); !ok {
					return nil, fmt.Errorf("analysis: %s: the index puts %s in %s, which does not hold it", dir, n, rel)
				}
				s.byName[n] = f
			}
		}
	case isFile(filepath.Join(dir, loader.SingleFile)):
		f, err := open(loader.SingleFile, nil, false)
		if err != nil {
			return nil, err
		}
		for _, ti := range f.Tensors() {
			s.shards[0].Names = append(s.shards[0].Names, ti.Name)
			s.byName[ti.Name] = f
		}
	default:
		return nil, fmt.Errorf("analysis: %s: no %s or %s (nor an original/ holding one)", dir, loader.IndexFile, loader.SingleFile)
	}
	return s, nil
}

func hasWeights(dir string) bool {
	return isFile(filepath.Join(dir, loader.IndexFile)) || isFile(filepath.Join(dir, loader.SingleFile))
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// Shards lists the files in name order.
func (s *Store) Shards() []Shard { return slices.Clone(s.shards) }

// Names lists every tensor name, sorted.
func (s *Store) Names() []string {
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Has reports whether the store holds a tensor of that name.
func (s *Store) Has(name string) bool { _, ok := s.byName[name]; return ok }

// Tensor returns a tensor; its data aliases the file mapping until Close.
func (s *Store) Tensor(name string) (loader.Tensor, error) {
	f, ok := s.byName[name]
	if !ok {
		return loader.Tensor{}, fmt.Errorf("analysis: %s: no tensor %q", s.Dir, name)
	}
	t, ok := f.Tensor(name)
	if !ok {
		return loader.Tensor{}, fmt.Errorf("analysis: %s: %s is closed", name, f.Path)
	}
	return t, nil
}

// Close unmaps every file.
func (s *Store) Close() error {
	var errs []error
	for _, f := range s.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
