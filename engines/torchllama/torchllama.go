// Package torchllama holds the one copy of the PyTorch Llama that two engines run: the pytorch engine's
// compiled mode (gpt-fast style: fused qkv and gate/up weights, static KV cache written in place, SDPA, greedy
// argmax on device) and the libtorch engine's AOTInductor export of that same model. Each engine embeds it
// through this package and writes it next to its own Python, so the two cannot drift apart.
package torchllama

import (
	"crypto/sha256"
	_ "embed"
	"os"
	"path/filepath"
)

// Name is the file name the Python side imports (import llama).
const Name = "llama.py"

//go:embed llama.py
var source []byte

// Source returns the model code.
func Source() []byte { return source }

// Sum returns the SHA-256 of the model code, for cache keys of anything compiled from it.
func Sum() [32]byte { return sha256.Sum256(source) }

// Write writes the model code into dir as llama.py.
func Write(dir string) error {
	return os.WriteFile(filepath.Join(dir, Name), source, 0o644)
}
