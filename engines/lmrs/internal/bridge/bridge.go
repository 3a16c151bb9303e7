// Package bridge is the only cgo in the lmrs engine: it calls the Rust crate in
// ../../bridge (static library bridge/lib/libcib_lmrs.a, built by
// scripts/build-lmrs.sh) through its C ABI (bridge/include/cib_lmrs.h).
package bridge

import (
	"errors"
	"fmt"
	"strings"
)

// Code classifies a bridge failure.
type Code int

// Codes, equal to the CIB_ERR_* return codes of the C ABI.
const (
	CodeBadArg      Code = 1
	CodeUnsupported Code = 2
	CodeLoad        Code = 3
	CodeOOM         Code = 4
	CodeRuntime     Code = 5
	CodeCancelled   Code = 6
	CodePanic       Code = 7
)

// Error is a failure reported by the Rust side.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// ErrNoCgo is returned by every call of a binary built without cgo.
var ErrNoCgo = errors.New("lmrs bridge: built without cgo (CGO_ENABLED=0); rebuild with scripts/build-lmrs.sh")

// Loaded is the cold-start breakdown of a load, durations in ns.
type Loaded struct {
	ContextInitNs   int64
	WeightsToHostNs int64
	// ConvertNs is the in-memory conversion of an HF directory, 0 for an lmrs file.
	ConvertNs int64
	Params    int64
	Vocab     int64
	MaxSeq    int64
	// Settings are the settings the Rust side reports as in effect.
	Settings map[string]string
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

func checkGenerate(prompt []uint32, nNew, batch int, ids []uint32, ns []int64) error {
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
