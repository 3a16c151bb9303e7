// Package torchllama holds the one copy of the PyTorch Llama that two engines run: the pytorch engine's
// compiled mode (gpt-fast style: fused qkv and gate/up weights, static KV cache written in place, SDPA, greedy
// argmax on device) and the libtorch engine's AOTInductor export of that same model — llama.py, and kernels.py,
// which reads the launch configurations Inductor's Triton kernels settled on. Each engine embeds them through
// this package and writes them next to its own Python, so the two cannot drift apart.
package torchllama

import (
	"crypto/sha256"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Name is the model's file name, which the Python side imports (import llama).
const Name = "llama.py"

//go:embed *.py
var files embed.FS

// Source returns the model code (llama.py).
func Source() []byte {
	b, err := files.ReadFile(Name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}

// Sum returns the SHA-256 over every embedded file (names and contents, in name order), for cache keys of
// anything compiled from them.
func Sum() [32]byte {
	h := sha256.New()
	names, _ := fs.Glob(files, "*.py") // sorted
	for _, n := range names {
		b, _ := files.ReadFile(n)
		fmt.Fprintf(h, "%s %x\n", n, sha256.Sum256(b))
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// Write writes the embedded files into dir.
func Write(dir string) error {
	names, err := fs.Glob(files, "*.py")
	if err != nil {
		return err
	}
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
