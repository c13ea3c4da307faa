package synth

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gptoss/gptoss/mxfp4"
)

// Options control Write.
type Options struct {
	Seed uint64
	// Original also writes original/ (OpenAI layout, same weights).
	Original bool
	// ShardSize caps the tensor data per HF safetensors file; ≤ 0 writes
	// one model.safetensors. OriginalShardSize does the same for original/.
	ShardSize         int64
	OriginalShardSize int64
	// Force replaces an existing checkpoint in the directory (stale shards
	// and index files of the old one are removed). Without it Write refuses
	// to touch a directory that already holds one.
	Force bool
	// Progress, if set, is called after each tensor with the tensor bytes
	// written so far and the total.
	Progress func(done, total int64)
}

// File is one written file; Path is relative to the output directory.
type File struct {
	Path string
	Size int64
}

// Write generates the checkpoint for c into dir. Everything is written
// under a temporary directory inside dir and renamed into place only once
// complete (config.json last), so a cancelled or failed run leaves no file
// that looks like a finished checkpoint. Memory use is bounded by a few
// MiB of buffers plus one expert tensor's scales (1/16 of its blocks; 66 MB
// for 120b's gate_up), independent of tensor sizes otherwise.
func Write(ctx context.Context, dir string, c Config, o Options) (_ []File, err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	src := newSources(c)

	// Plan every file up front: names, headers and sizes are known before
	// any weight is generated.
	type jsonFile struct {
		path string
		data []byte
	}
	var shards []shard
	var jsons []jsonFile
	addLayout := func(sub string, es []entry, max int64, name func(i, n int) string) error {
		groups := planShards(es, max)
		first := len(shards)
		for i, g := range groups {
			sh := shard{path: sub + name(i, len(groups)), entries: g}
			header, err := safetensorsHeader(g)
			if err != nil {
				return err
			}
			sh.size = int64(len(header))
			for _, e := range g {
				sh.size += e.Size()
			}
			shards = append(shards, sh)
		}
		if len(groups) > 1 {
			b, err := indexJSON(shards[first:], sub)
			if err != nil {
				return err
			}
			jsons = append(jsons, jsonFile{sub + "model.safetensors.index.json", b})
		}
		return nil
	}
	if err := addLayout("", src.hfEntries(), o.ShardSize, hfShardName); err != nil {
		return nil, fmt.Errorf("synth: index: %w", err)
	}
	if o.Original {
		oes := src.originalEntries()
		if err := addLayout("original/", oes, o.OriginalShardSize, originalShardName); err != nil {
			return nil, fmt.Errorf("synth: original index: %w", err)
		}
		b, err := c.OriginalConfigJSON()
		if err != nil {
			return nil, fmt.Errorf("synth: original/config.json: %w", err)
		}
		jsons = append(jsons, jsonFile{"original/config.json", b})
		if b, err = marshalFile(originalDTypes(oes), " "); err != nil {
			return nil, fmt.Errorf("synth: original/dtypes.json: %w", err)
		}
		jsons = append(jsons, jsonFile{"original/dtypes.json", b})
	}
	gc, err := c.GenerationConfigJSON()
	if err != nil {
		return nil, fmt.Errorf("synth: generation_config.json: %w", err)
	}
	jsons = append(jsons, jsonFile{"generation_config.json", gc})
	// config.json last: it is what marks a directory as a checkpoint.
	cj, err := c.HFConfigJSON()
	if err != nil {
		return nil, fmt.Errorf("synth: config.json: %w", err)
	}
	jsons = append(jsons, jsonFile{"config.json", cj})

	var files []File
	var total, need int64
	for _, s := range shards {
		files = append(files, File{s.path, s.size})
		need += s.size
		for _, e := range s.entries {
			total += e.Size()
		}
	}
	for _, j := range jsons {
		files = append(files, File{j.path, int64(len(j.data))})
		need += int64(len(j.data))
	}

	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// We created dir: on failure take it away again (Remove only
		// succeeds while it is empty, i.e. nothing was published).
		defer func() {
			if err != nil {
				os.Remove(dir)
			}
		}()
	}
	stale, replaced, err := existing(dir, files, o.Original)
	if err != nil {
		return nil, err
	}
	if len(stale)+len(replaced) > 0 && !o.Force {
		return nil, fmt.Errorf("synth: %s already holds a checkpoint (%s); use --force to replace it",
			dir, strings.Join(append(replaced, stale...), ", "))
	}
	if err := checkSpace(dir, need, replaced); err != nil {
		return nil, err
	}

	tmp, err := os.MkdirTemp(dir, ".synth-tmp-")
	if err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	defer os.RemoveAll(tmp) // after the renames it is empty; on error it takes the partial files
	if o.Original {
		if err := os.Mkdir(filepath.Join(tmp, "original"), 0o755); err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
	}

	g := newGen(o.Seed, total, o.Progress)
	for _, s := range shards {
		if err := g.writeShard(ctx, filepath.Join(tmp, s.path), s); err != nil {
			return nil, err
		}
	}
	for _, j := range jsons {
		if err := os.WriteFile(filepath.Join(tmp, j.path), j.data, 0o644); err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}

	// Publish: clear the old checkpoint's leftovers, then move files in,
	// config.json last.
	for _, p := range stale {
		if err := os.Remove(filepath.Join(dir, p)); err != nil {
			return nil, fmt.Errorf("synth: removing stale %s: %w", p, err)
		}
	}
	if o.Original {
		if err := os.MkdirAll(filepath.Join(dir, "original"), 0o755); err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
	}
	for _, f := range files {
		if err := os.Rename(filepath.Join(tmp, f.Path), filepath.Join(dir, f.Path)); err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
	}
	return files, nil
}

// existing reports which files in dir a new checkpoint would replace, and
// which checkpoint files of an older one (other shard names, an index that
// would no longer apply) would be left stale.
func existing(dir string, files []File, original bool) (stale, replaced []string, err error) {
	ours := map[string]bool{}
	for _, f := range files {
		ours[f.Path] = true
		if _, err := os.Stat(filepath.Join(dir, f.Path)); err == nil {
			replaced = append(replaced, f.Path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("synth: %w", err)
		}
	}
	subs := []string{""}
	if original {
		subs = append(subs, "original/")
	}
	for _, sub := range subs {
		ms, err := filepath.Glob(filepath.Join(dir, sub, "model*.safetensors*"))
		if err != nil {
			return nil, nil, fmt.Errorf("synth: %w", err)
		}
		for _, m := range ms {
			p := sub + filepath.Base(m)
			if !ours[p] {
				stale = append(stale, p)
			}
		}
	}
	return stale, replaced, nil
}

// gen generates tensor bytes into a writer, reusing its buffers.
type gen struct {
	seed        uint64
	done, total int64
	progress    func(done, total int64)
	// scales[src] holds an expert weight's E8M0 scales, computed while its
	// blocks were written and consumed by its scales tensor (which sorts
	// right after it), so the weight is generated once per layout.
	scales map[*source][]byte
	f32    []float32
	buf    []byte
}

// gaussChunk is the number of BF16 values generated per write: bounds the
// buffers to 128 KiB + 64 KiB.
const gaussChunk = 1 << 15

func newGen(seed uint64, total int64, progress func(done, total int64)) *gen {
	return &gen{seed: seed, total: total, progress: progress, scales: map[*source][]byte{}}
}

func (g *gen) writeShard(ctx context.Context, path string, s shard) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("synth: %s: %w", path, cerr)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	header, err := safetensorsHeader(s.entries)
	if err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return fmt.Errorf("synth: %s: %w", path, err)
	}
	for _, e := range s.entries {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
		for _, p := range e.parts {
			if err := g.writePart(ctx, w, p); err != nil {
				return fmt.Errorf("synth: %s: %w", e.Name, err)
			}
		}
		g.done += e.Size()
		if g.progress != nil {
			g.progress(g.done, g.total)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("synth: %s: %w", path, err)
	}
	return nil
}

func (g *gen) writePart(ctx context.Context, w io.Writer, p part) error {
	switch p.kind {
	case partBF16:
		return g.writeBF16(ctx, w, p.src)
	case partBlocks:
		sc, err := g.experts(ctx, w, p.src)
		if err != nil {
			return err
		}
		g.scales[p.src] = sc
		return nil
	default:
		sc, ok := g.scales[p.src]
		if !ok { // not cached (blocks not written first): regenerate
			var err error
			if sc, err = g.experts(ctx, io.Discard, p.src); err != nil {
				return err
			}
		}
		delete(g.scales, p.src)
		_, err := w.Write(sc)
		return err
	}
}

// writeBF16 streams rows·cols Gaussian values as little-endian BF16.
func (g *gen) writeBF16(ctx context.Context, w io.Writer, s *source) error {
	r := s.rng(g.seed)
	if cap(g.buf) < 2*gaussChunk {
		g.buf = make([]byte, 2*gaussChunk)
	}
	n := s.rows * s.cols
	for done := int64(0); done < n; {
		k := int(min(n-done, gaussChunk))
		b := g.buf[:2*k]
		for i := 0; i < k; i++ {
			v := float32(s.mean + s.std*r.NormFloat64())
			binary.LittleEndian.PutUint16(b[2*i:], bf16(v))
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		done += int64(k)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// experts generates an expert weight row by row (rows of cols inputs,
// Gaussian in float32), MXFP4-encodes each row, writes the blocks to w and
// returns all scales.
func (g *gen) experts(ctx context.Context, w io.Writer, s *source) ([]byte, error) {
	r := s.rng(g.seed)
	G := int(s.cols / 32)
	scales := make([]byte, s.rows*int64(G))
	if int64(cap(g.f32)) < s.cols {
		g.f32 = make([]float32, s.cols)
	}
	if cap(g.buf) < 16*G {
		g.buf = make([]byte, 16*G)
	}
	row, blk := g.f32[:s.cols], g.buf[:16*G]
	for i := int64(0); i < s.rows; i++ {
		for j := range row {
			row[j] = float32(s.mean + s.std*r.NormFloat64())
		}
		mxfp4.EncodeRow(blk, scales[i*int64(G):(i+1)*int64(G)], row)
		if _, err := w.Write(blk); err != nil {
			return nil, err
		}
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	return scales, nil
}
