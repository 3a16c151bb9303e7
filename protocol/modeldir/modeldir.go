// Package modeldir identifies a Hugging Face-style model directory cheaply, for the caches engines keep next
// to or derived from it (llama.cpp's converted GGUF, libtorch's AOTInductor package): every engine that caches
// a model-derived artifact keys it the same way.
//
// The runner's own model hash (results' model.hash) reads every byte; this fingerprint reads config.json, each
// safetensors header and 64 evenly spaced 64 KiB samples of each shard's data — a few MiB whatever the model
// size, so it can run in every launch without landing in the cold start. It never looks at modification
// times: a copy of the same files has the same fingerprint, and rewritten weights a new one (an edit small
// enough to fall between the samples of an unchanged-size shard is the case it does not catch).
package modeldir

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// Sampling of each shard's data section.
const (
	SampleLen = 64 << 10
	Samples   = 64
)

// Fingerprint returns the hex SHA-256 of dir's config.json and, for each *.safetensors file in name order,
// its name, size, header and sampled data.
func Fingerprint(dir string) (string, error) {
	h := sha256.New()
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "config.json %d\n", len(cfg))
	h.Write(cfg)
	files, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "", fmt.Errorf("%s: no *.safetensors files", dir)
	}
	slices.Sort(files)
	buf := make([]byte, SampleLen)
	for _, f := range files {
		if err := sampleFile(h, f, buf); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sampleFile(h hash.Hash, path string, buf []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	fmt.Fprintf(h, "%s %d\n", filepath.Base(path), size)
	var n8 [8]byte
	if _, err := io.ReadFull(f, n8[:]); err != nil {
		return fmt.Errorf("%s: safetensors header: %w", path, err)
	}
	hdr := int64(binary.LittleEndian.Uint64(n8[:]))
	if hdr <= 0 || hdr > size-8 || hdr > 100<<20 {
		return fmt.Errorf("%s: safetensors header length %d in a file of %d bytes", path, hdr, size)
	}
	if _, err := io.CopyN(h, f, hdr); err != nil {
		return fmt.Errorf("%s: safetensors header: %w", path, err)
	}
	data := size - 8 - hdr
	for i := range int64(Samples) {
		off := 8 + hdr + data*i/Samples
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: %w", path, err)
		}
		h.Write(buf[:n])
	}
	return nil
}
