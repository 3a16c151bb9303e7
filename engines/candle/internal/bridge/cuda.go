//go:build cgo && cuda

package bridge

// The CUDA build of the crate, bridge/lib/libcib_candle_cuda.a, needs
// candle-kernels' libmoe.a (copied next to it) and the CUDA libraries, linked
// dynamically. At build time LIBRARY_PATH from scripts/cuda-toolkit.sh finds
// them (libcuda is a link stub there); at run time they come from
// /usr/local/cuda/lib64 (rpath below) and the driver's libcuda.so.1.

/*
#cgo LDFLAGS: -lcib_candle_cuda -lmoe -lcublas -lcublasLt -lcurand -lnvrtc -lcudart -lcuda -lstdc++ -Wl,-rpath,/usr/local/cuda/lib64
*/
import "C"
