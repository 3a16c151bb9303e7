//go:build !unix

package ggufw

// statFree cannot tell on this platform: the conversion runs unchecked.
func statFree(string) (int64, bool) { return 0, false }
