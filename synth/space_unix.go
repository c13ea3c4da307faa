//go:build linux || darwin || freebsd

package synth

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// checkSpace fails early when dir's filesystem cannot hold need bytes
// (files about to be replaced count as free): a 120b checkpoint takes many
// minutes to generate, and running out of disk at the end wastes them.
func checkSpace(dir string, need int64, replaced []string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil // no answer is not a reason to refuse; writing will tell
	}
	free := int64(uint64(st.Bavail) * uint64(st.Bsize))
	for _, p := range replaced {
		if fi, err := os.Stat(filepath.Join(dir, p)); err == nil {
			free += fi.Size()
		}
	}
	if need > free {
		return fmt.Errorf("synth: %s: need %s, only %s free", dir, FormatSize(need), FormatSize(free))
	}
	return nil
}
