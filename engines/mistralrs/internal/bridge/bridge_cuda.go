//go:build cgo && cuda

package bridge

// CUDA builds link bridge/lib/libcib_mistralrs_cuda.a, the kernel archives
// that mistralrs-core, mistralrs-quant, mistralrs-paged-attn and candle-kernels
// build with nvcc, and the CUDA libraries they and cudarc need.
// scripts/build-mistralrs.sh --cuda copies the archives next to the bridge and
// puts the PyPI CUDA 13.0 toolkit (and a libcuda stub) on LIBRARY_PATH. At run
// time the libraries come from LD_LIBRARY_PATH (/usr/local/cuda/lib64 on the
// GPU host).

/*
#cgo LDFLAGS: -lcib_mistralrs_cuda -lmistralrscuda -lmistralrsquant -lmistralrspagedattention -lmoe -lcudart -lcublas -lcublasLt -lcurand -lnvrtc -lcuda -lstdc++ -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

// cudarc (dynamic-linking) binds a few entry points that the CUDA 13.0
// libraries do not export: cuProfilerInitialize (gone from the driver API, and
// from the libcuda link stub) and cublasLt's emulation descriptors (newer than
// 13.0's cuBLASLt). Nothing in candle or mistral.rs calls them; these
// definitions satisfy the linker and fail cleanly if ever reached.
int cuProfilerInitialize(void) { return 999; }                // CUDA_ERROR_UNKNOWN
int cublasLtEmulationDescCreate(void) { return 15; }          // CUBLAS_STATUS_NOT_SUPPORTED
int cublasLtEmulationDescDestroy(void) { return 15; }
int cublasLtEmulationDescGetAttribute(void) { return 15; }
int cublasLtEmulationDescSetAttribute(void) { return 15; }
int cublasLtEmulationDescInit_internal(void) { return 15; }
*/
import "C"
