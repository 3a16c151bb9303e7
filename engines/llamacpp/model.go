package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/ggufw"
	"github.com/cuda-inference-benchmarks/cib/protocol/modeldir"
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

// contentKey names the GGUF converted from the HF directory dir: its
// modeldir fingerprint (config.json, safetensors headers and sampled weights:
// a few MiB read per launch, however large the model) and ggufw.Revision, so a
// converter that writes other bytes rewrites the file rather than reusing an
// old one.
func contentKey(dir string) (string, error) {
	fp, err := modeldir.Fingerprint(dir)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "cib-llamacpp-gguf ggufw revision %d\n%s\n", ggufw.Revision, fp))
	return hex.EncodeToString(sum[:12]), nil
}
