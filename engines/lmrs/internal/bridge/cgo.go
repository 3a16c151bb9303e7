//go:build cgo

package bridge

/*
#cgo CFLAGS: -I${SRCDIR}/../../bridge/include
#cgo LDFLAGS: -L${SRCDIR}/../../bridge/lib -lcib_lmrs -lm -ldl -lpthread -lgcc_s -lc
#include <stdlib.h>
#include "cib_lmrs.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"sync"
	"unsafe"
)

const errLen = 4096

func call(f func(err *C.char, n C.size_t) C.int32_t) error {
	buf := (*C.char)(C.malloc(errLen))
	defer C.free(unsafe.Pointer(buf))
	*buf = 0
	if rc := f(buf, errLen); rc != 0 {
		return &Error{Code: Code(rc), Message: C.GoString(buf)}
	}
	return nil
}

// Versions returns what the Rust side reports about itself (bridge, format,
// rustc, isa) as strings.
func Versions() (map[string]string, error) {
	const n = 4096
	buf := (*C.char)(C.malloc(n))
	defer C.free(unsafe.Pointer(buf))
	if rc := C.cib_lmrs_info(buf, n); rc != 0 {
		return nil, &Error{Code: Code(rc), Message: "info: " + C.GoString(buf)}
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(C.GoString(buf)), &raw); err != nil {
		return nil, fmt.Errorf("info: decode bridge JSON: %w", err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		out[k] = fmt.Sprint(v)
	}
	return out, nil
}

// Model is a loaded model on the Rust side.
type Model struct {
	h  *C.cib_lmrs_engine
	mu sync.Mutex // orders Cancel against Close
}

// Load loads model (an lmrs file, a directory holding model.lmrs, or an HF
// Llama directory converted in memory to quant with groupSize, 0 = default)
// with threads CPU threads (0 = one per core).
func Load(model, quant string, groupSize, threads int) (*Model, Loaded, error) {
	cmodel, cquant := C.CString(model), C.CString(quant)
	defer C.free(unsafe.Pointer(cmodel))
	defer C.free(unsafe.Pointer(cquant))
	var h *C.cib_lmrs_engine
	out := (*C.cib_lmrs_loaded)(C.calloc(1, C.size_t(unsafe.Sizeof(C.cib_lmrs_loaded{}))))
	defer C.free(unsafe.Pointer(out))
	err := call(func(e *C.char, n C.size_t) C.int32_t {
		return C.cib_lmrs_load(cmodel, cquant, C.int32_t(groupSize), C.int32_t(threads), &h, out, e, n)
	})
	if err != nil {
		return nil, Loaded{}, err
	}
	l := Loaded{
		ContextInitNs:   int64(out.context_init_ns),
		WeightsToHostNs: int64(out.weights_to_host_ns),
		ConvertNs:       int64(out.convert_ns),
		Params:          int64(out.params),
		Vocab:           int64(out.vocab),
		MaxSeq:          int64(out.max_seq),
		Settings:        parseSettings(C.GoString(&out.settings[0])),
	}
	return &Model{h: h}, l, nil
}

// Generate decodes nNew tokens greedily for batch copies of prompt. ids gets
// nNew*batch ids, step-major; ns gets nNew offsets in ns from the start of
// the Rust call. Generate and Close must not run concurrently.
func (m *Model) Generate(prompt []uint32, nNew, batch int, ids []uint32, ns []int64) error {
	if m.h == nil {
		return &Error{Code: CodeBadArg, Message: "generate: model is closed"}
	}
	if err := checkGenerate(prompt, nNew, batch, ids, ns); err != nil {
		return err
	}
	// The slices hold no Go pointers and C keeps none of them after the
	// call, which cgo's pointer rules allow.
	return call(func(e *C.char, n C.size_t) C.int32_t {
		return C.cib_lmrs_generate(m.h, (*C.uint32_t)(&prompt[0]), C.size_t(len(prompt)), C.size_t(nNew), C.size_t(batch),
			(*C.uint32_t)(&ids[0]), (*C.int64_t)(&ns[0]), e, n)
	})
}

// Cancel makes a running Generate, and every later one, fail with
// CodeCancelled. It is safe to call from any goroutine at any time.
func (m *Model) Cancel() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h != nil {
		C.cib_lmrs_cancel(m.h)
	}
}

// Close frees the model.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h != nil {
		C.cib_lmrs_free(m.h)
		m.h = nil
	}
	return nil
}
