//go:build !linux

package profile

// MonoNs is 0 off Linux: CUPTI injection and this alignment are Linux-only.
func MonoNs() int64 { return 0 }
