//go:build unix

package ggufw

import "syscall"

// statFree is the space an unprivileged writer has left on the filesystem
// holding dir (statfs's available blocks); ok is false when it cannot tell.
func statFree(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
