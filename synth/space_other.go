//go:build !(linux || darwin || freebsd)

package synth

// checkSpace is a no-op where statfs is not available; a full disk then
// shows up as a write error.
func checkSpace(dir string, need int64, replaced []string) error { return nil }
