package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/ggufw"
	"github.com/cuda-inference-benchmarks/cib/protocol/serve"
)

// source is the GGUF file a request's model resolves to.
type source struct {
	path string
	// how says where it came from: "file", "dir" (the one .gguf in the
	// directory), "converted" (written now) or "cache" (converted earlier).
	how string
	// convertNs is the conversion time, 0 unless how is "converted".
	convertNs int64
	// warnings are the converter's (tensors stored in another type…).
	warnings []string
}

// resolve finds or makes the GGUF file for model: a .gguf file as it is, a
// directory holding exactly one .gguf, or an HF Llama directory (config.json
// and safetensors) converted to weights (f32, f16, bf16, q8_0, q4_k) under
// cacheDir, keyed by the directory's content, reused when present.
func resolve(ctx context.Context, model, weights, cacheDir string) (source, error) {
	st, err := os.Stat(model)
	if err != nil {
		return source{}, fmt.Errorf("model %s: %w", model, err)
	}
	if !st.IsDir() {
		if !strings.HasSuffix(model, ".gguf") {
			return source{}, fmt.Errorf("model %s: a file, but not a .gguf", model)
		}
		return source{path: model, how: "file"}, nil
	}
	ggufs, _ := filepath.Glob(filepath.Join(model, "*.gguf"))
	switch {
	case len(ggufs) == 1:
		return source{path: ggufs[0], how: "dir"}, nil
	case len(ggufs) > 1:
		return source{}, fmt.Errorf("model %s holds %d .gguf files (%s): name one", model, len(ggufs), strings.Join(ggufs, ", "))
	}
	if _, err := os.Stat(filepath.Join(model, "config.json")); err != nil {
		return source{}, fmt.Errorf("model %s: neither a .gguf file, a directory holding one, nor an HF directory (config.json): %w", model, err)
	}
	typ, err := ggufw.ParseType(weights)
	if err != nil {
		return source{}, serve.BadRequest(fmt.Errorf("GGUF weight type: %w", err))
	}
	key, err := contentKey(model)
	if err != nil {
		return source{}, fmt.Errorf("model %s: %w", model, err)
	}
	out := filepath.Join(cacheDir, key+"-"+weights+".gguf")
	if _, err := os.Stat(out); err == nil {
		return source{path: out, how: "cache"}, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return source{}, fmt.Errorf("gguf cache: %w", err)
	}
	// ConvertHF writes a temporary file next to out and renames it: a
	// concurrent launch never reads half a file.
	cs, err := ggufw.ConvertHF(ctx, model, out, typ, ggufw.Options{})
	if err != nil {
		return source{}, err
	}
	return source{path: out, how: "converted", convertNs: int64(cs.Duration), warnings: cs.Warnings}, nil
}

// sampleLen and samples bound the bytes contentKey reads of each weight file:
// its size, its whole safetensors header, and samples slices of sampleLen
// spread over it. Random weights of one shape and another seed differ in
// every slice; reading all of an 8B checkpoint (16 GB) would add seconds to
// every launch.
const (
	sampleLen = 64 << 10
	samples   = 64
)

// contentKey identifies an HF directory by config.json, and for each
// *.safetensors file (sorted) its name, size, header and sampled content.
// ggufw.Revision is part of it, so a converter that writes other bytes
// rewrites the file rather than reusing an old one.
func contentKey(dir string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "cib-llamacpp-gguf ggufw revision %d\n", ggufw.Revision)
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return "", err
	}
	h.Write(cfg)
	files, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if len(files) == 0 {
		return "", errors.New("no *.safetensors files")
	}
	slices.Sort(files)
	buf := make([]byte, sampleLen)
	for _, f := range files {
		if err := sampleFile(h, f, buf); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:12]), nil
}

func sampleFile(h io.Writer, path string, buf []byte) error {
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
	for i := range int64(samples) {
		off := 8 + hdr + data*i/samples
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		h.Write(buf[:n])
	}
	return nil
}
