//go:build cgo && cuda

package bridge

// The CUDA build of the crate, bridge/lib/libcib_candle_cuda.a, needs
// candle-kernels' libmoe.a (copied next to it) and the CUDA libraries, linked
// dynamically. At build time LIBRARY_PATH from scripts/cuda-toolkit.sh finds
// them (libcuda is a link stub there); at run time they come from
// /usr/local/cuda/lib64 (rpath below) and the driver's libcuda.so.1.
// libcib_cuda_compat.a (from the toolkit script) resolves the few functions
// cudarc declares that CUDA 13.0 lacks; nothing calls them.

/*
#cgo LDFLAGS: -lcib_candle_cuda -lmoe -lcublas -lcublasLt -lcurand -lnvrtc -lcudart -lcuda -lcib_cuda_compat -lstdc++ -lm -ldl -lpthread -lgcc_s -lc -Wl,-rpath,/usr/local/cuda/lib64
*/
import "C"
