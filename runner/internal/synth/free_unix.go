//go:build unix

package synth

import (
	"fmt"
	"syscall"
)

// checkFree fails early when the file system holding dir has less than need
// bytes free, rather than after writing most of a 16 GB checkpoint.
func checkFree(dir string, need int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil // unknown: let the writes tell
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if free < need {
		return fmt.Errorf("%s has %s free, the model needs %s", dir, gb(free), gb(need))
	}
	return nil
}
