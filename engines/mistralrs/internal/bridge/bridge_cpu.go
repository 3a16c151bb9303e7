//go:build cgo && !cuda

package bridge

// CPU builds link bridge/lib/libcib_mistralrs.a (scripts/build-mistralrs.sh).

/*
#cgo LDFLAGS: -lcib_mistralrs -lstdc++ -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
*/
import "C"
