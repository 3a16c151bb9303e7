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
*/
import "C"
