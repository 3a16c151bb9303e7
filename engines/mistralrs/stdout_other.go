//go:build !linux

package main

import "os"

// protectStdout returns stdout unchanged off Linux.
func protectStdout() *os.File { return os.Stdout }
