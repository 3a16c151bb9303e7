//go:build cgo && !cuda

package bridge

// The CPU build links the library built by `scripts/build-burn.sh` (flex backend).

// #cgo LDFLAGS: -L${SRCDIR}/../../bridge/lib/cpu -lcib_burn -lm -ldl -lpthread -lrt -lgcc_s -lutil
import "C"
