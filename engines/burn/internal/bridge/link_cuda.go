//go:build cgo && cuda

package bridge

// The CUDA build links the library built by `scripts/build-burn.sh --cuda`
// (flex + cubecl CUDA). cudarc reaches libcuda and NVRTC by dlopen at run time,
// so no CUDA library is named here and the build needs no CUDA toolkit.

// #cgo LDFLAGS: -L${SRCDIR}/../../bridge/lib/cuda -lcib_burn -lm -ldl -lpthread -lrt -lgcc_s -lutil
import "C"
