// Package bridge is the only cgo in the libtorch engine. It loads the C++ bridge libcib_libtorch.so
// (engines/libtorch/bridge, built by scripts/build-libtorch.sh against the torch wheel) with dlopen at run
// time, after preloading libtorch's own libraries from a torch/lib directory, so the Go binary builds and
// starts without libtorch and a missing libtorch is an ordinary error, not a loader crash.
package bridge

import (
	"errors"
	"fmt"
)

// Code classifies a bridge failure.
type Code int

// Codes, equal to the CIB_LT_* return codes of the C ABI; CodeOpen is Go's (dlopen/dlsym failed).
const (
	CodeBadArg      Code = 1
	CodeUnsupported Code = 2
	CodeOOM         Code = 3
	CodeFailed      Code = 4
	CodeOpen        Code = 100
)

// Error is a failure reported by the bridge.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// ErrNoCgo is returned by every call of a binary built without cgo.
var ErrNoCgo = errors.New("libtorch bridge: built without cgo (CGO_ENABLED=0); rebuild with scripts/build-libtorch.sh")

// Paths says where the libraries are: Bridge is libcib_libtorch.so, TorchLib the torch wheel's torch/lib
// directory (libc10.so, libtorch_cpu.so, libtorch.so and the CUDA ones).
type Paths struct {
	Bridge   string
	TorchLib string
}

// torchLibs are preloaded with RTLD_GLOBAL in dependency order, so the bridge's DT_NEEDED entries resolve
// to them by soname whatever LD_LIBRARY_PATH says. The CUDA ones pull in the nvidia wheels through
// their own RUNPATH.
var torchLibs = []string{"libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so"}

func checkGenerate(prompt []int64, nNew, batch int, ids, ns []int64) error {
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
