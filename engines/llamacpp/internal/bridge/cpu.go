//go:build cgo && !cuda

package bridge

// The CPU build links llama.cpp's static libraries from ../../lib/cpu
// (scripts/build-llamacpp.sh copies them there), OpenMP and the C++ runtime.

/*
#cgo CFLAGS: -I${SRCDIR}/../../lib/cpu/include
#cgo LDFLAGS: -L${SRCDIR}/../../lib/cpu/lib -lllama -lggml -lggml-cpu -lggml-base -lstdc++ -lgomp -lm -ldl -lpthread
*/
import "C"

// CUDA says whether this build has llama.cpp's CUDA backend.
const CUDA = false
