package profile

import (
	"syscall"
	"unsafe"
)

// MonoNs reads CLOCK_MONOTONIC in ns, the clock libcib_cupti stamps activity
// with. (Go's own monotonic readings come from the same clock but expose no
// epoch.)
func MonoNs() int64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0
	}
	return ts.Nano()
}
