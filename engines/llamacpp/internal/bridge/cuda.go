//go:build cgo && cuda

package bridge

// The CUDA build links llama.cpp's static libraries from ../../lib/cuda
// (with libggml-cuda.a, sm_90, nvcc 13.0.88) and the CUDA libraries
// dynamically: at build time LIBRARY_PATH from scripts/cuda-toolkit.sh finds
// them (libcuda is a link stub there); at run time they come from
// /usr/local/cuda/lib64 (rpath below) and the driver's libcuda.so.1.

/*
#cgo CFLAGS: -I${SRCDIR}/../../lib/cuda/include
#cgo LDFLAGS: -L${SRCDIR}/../../lib/cuda/lib -lllama -lggml -lggml-cpu -lggml-cuda -lggml-base -lcublas -lcublasLt -lcudart -lcuda -lstdc++ -lgomp -lm -ldl -lpthread -Wl,-rpath,/usr/local/cuda/lib64
*/
import "C"

// CUDA says whether this build has llama.cpp's CUDA backend.
const CUDA = true
