//go:build cgo && cuda

package bridge

// The CUDA build links libcib_llama.so from ../../lib/cuda/lib: cib_llama.c
// and llama.cpp's static libraries (with libggml-cuda.a, sm_90, nvcc
// 13.0.88) in one shared object, which the engine and llamacpp-bench share
// (the kernels are ~60 MB: shipped once, next to both binaries, found through
// rpath $ORIGIN). scripts/build-llamacpp.sh --cuda builds it. The CUDA
// libraries it needs come from /usr/local/cuda/lib64 at run time and the
// driver's libcuda.so.1.

/*
#cgo CFLAGS: -I${SRCDIR}/../../lib/cuda/include
#cgo LDFLAGS: -L${SRCDIR}/../../lib/cuda/lib -lcib_llama -lcublas -lcublasLt -lcudart -lcuda -Wl,-rpath,$ORIGIN -Wl,-rpath,/usr/local/cuda/lib64
*/
import "C"

// CUDA says whether this build has llama.cpp's CUDA backend.
const CUDA = true
