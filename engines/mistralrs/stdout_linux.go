package main

import (
	"os"
	"syscall"
)

// protectStdout keeps native code from corrupting the event stream: it moves
// the real stdout to a new descriptor for the protocol and points fd 1 at
// stderr, so anything mistral.rs or CUDA prints lands in the log instead.
func protectStdout() *os.File {
	fd, err := syscall.Dup(1)
	if err != nil {
		return os.Stdout
	}
	if err := syscall.Dup3(2, 1, 0); err != nil {
		syscall.Close(fd)
		return os.Stdout
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "/dev/stdout")
}
