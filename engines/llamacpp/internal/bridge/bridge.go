// Package bridge is the only cgo in the llamacpp engine: it calls llama.cpp's C
// API (llama.h), built from the sources the crates.io crate llama-cpp-sys-2
// vendors into static libraries (scripts/build-llamacpp-lib.sh) and copied to
// ../../lib/{cpu,cuda} by scripts/build-llamacpp.sh. The decode loop itself is
// C (cib_llama.c), shared with the native bench (bench/llamacpp-bench.c), so
// the engine and the bench time the same calls.
package bridge

import (
	"errors"
	"fmt"
	"strings"
)

// Code classifies a bridge failure.
type Code int

// Codes, equal to the CIB_ERR_* return codes of cib_llama.h.
const (
	CodeBadArg      Code = 1
	CodeUnsupported Code = 2
	CodeLoad        Code = 3
	CodeOOM         Code = 4
	CodeRuntime     Code = 5
	CodeCancelled   Code = 6
)

// Error is a failure reported by the C side.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// ErrNoCgo is returned by every call of a binary built without cgo.
var ErrNoCgo = errors.New("llamacpp bridge: built without cgo (CGO_ENABLED=0); rebuild with scripts/build-llamacpp.sh")

// Flash-attention modes, llama.h's enum llama_flash_attn_type.
const (
	FlashAttnAuto = -1
	FlashAttnOff  = 0
	FlashAttnOn   = 1
)

// Params configures a load; see cib_llama_params in cib_llama.h.
type Params struct {
	Path string
	// Device is -1 for the CPU, N for CUDA device N (all layers offloaded).
	Device    int
	Threads   int
	FlashAttn int
	// UBatch is llama.cpp's n_ubatch; 0 makes it hold the largest prompt batch.
	UBatch int
	// TypeK and TypeV are ggml_type values of the KV cache; -1 keeps llama.cpp's f16.
	TypeK, TypeV int
	// CtxSeq is the context per sequence (longest prompt + new tokens).
	CtxSeq int
	// Seqs is the largest batch; Prompt the longest prompt.
	Seqs, Prompt int
}

// Loaded is the cold-start breakdown of a load, durations in ns.
type Loaded struct {
	ContextInitNs int64
	ModelLoadNs   int64
	Params        int64
	Vocab         int64
	CtxTrain      int64
	FType         string
	DeviceName    string
	// Settings are what llama.cpp reports as in effect.
	Settings map[string]string
}

// ggmlTypes are the KV-cache types the options accept, with ggml.h's enum
// ggml_type numbers.
var ggmlTypes = map[string]int{"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "bf16": 30}

// CacheType returns the ggml_type number of a KV-cache type name.
func CacheType(name string) (int, error) {
	if t, ok := ggmlTypes[strings.ToLower(name)]; ok {
		return t, nil
	}
	return 0, fmt.Errorf("cache type %q: want f32, f16, bf16, q8_0, q4_0, q4_1, q5_0 or q5_1", name)
}

func parseSettings(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func checkGenerate(prompt []int32, nNew, batch int, ids []int32, ns []int64) error {
	switch {
	case len(prompt) == 0:
		return &Error{Code: CodeBadArg, Message: "generate: empty prompt"}
	case nNew < 1 || batch < 1:
		return &Error{Code: CodeBadArg, Message: fmt.Sprintf("generate: %d new tokens, batch %d", nNew, batch)}
	case len(ids) < nNew*batch || len(ns) < nNew:
		return &Error{Code: CodeBadArg, Message: fmt.Sprintf("generate: buffers of %d ids and %d times for %d steps of batch %d", len(ids), len(ns), nNew, batch)}
	}
	return nil
}
