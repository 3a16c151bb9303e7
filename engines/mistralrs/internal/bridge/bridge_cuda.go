//go:build cgo && cuda

package bridge

// CUDA builds link bridge/lib/libcib_mistralrs_cuda.a and the CUDA libraries
// its kernels and cudarc need; scripts/build-mistralrs.sh --cuda puts the
// PyPI CUDA 13.0 toolkit (and a libcuda stub) on LIBRARY_PATH. At run time
// they come from LD_LIBRARY_PATH (/usr/local/cuda/lib64 on the GPU host).

/*
#cgo LDFLAGS: -lcib_mistralrs_cuda -lcudart -lcublas -lcublasLt -lcurand -lnvrtc -lcuda -lstdc++ -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
*/
import "C"
