//go:build cgo && !cuda

package bridge

// The CPU build of the crate: bridge/lib/libcib_candle.a.

/*
#cgo LDFLAGS: -lcib_candle -lm -ldl -lpthread -lgcc_s -lc
*/
import "C"
