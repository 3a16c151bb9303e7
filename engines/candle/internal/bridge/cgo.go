//go:build cgo

package bridge

/*
#cgo CFLAGS: -I${SRCDIR}/../../bridge/include
#cgo LDFLAGS: -L${SRCDIR}/../../bridge/lib
#include <stdlib.h>
#include "cib_candle.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime"
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

// Versions returns the versions the Rust side was built with (candle-core,
// rustc, nvcc…) as strings.
func Versions() (map[string]string, error) {
	const n = 4096
	buf := (*C.char)(C.malloc(n))
	defer C.free(unsafe.Pointer(buf))
	if rc := C.cib_candle_info(buf, n); rc != 0 {
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
	h  *C.cib_candle_engine
	w  *worker
	mu sync.Mutex // orders Cancel against Close
}

// worker runs calls on one locked OS thread. candle's CUDA device issues work
// on the per-thread default stream, so every call on a model comes from the
// same host thread, as in a plain Rust program (and in candle-bench).
type worker struct{ jobs chan func() }

func newWorker() *worker {
	w := &worker{jobs: make(chan func())}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		for f := range w.jobs {
			f()
		}
	}()
	return w
}

func (w *worker) do(f func()) {
	done := make(chan struct{})
	w.jobs <- func() { f(); close(done) }
	<-done
}

func (w *worker) stop() { close(w.jobs) }

// Load loads the HF Llama directory dir onto device ("cpu", "cuda:N") in
// dtype ("f32", "f16", "bf16") with threads CPU threads (0 = default).
func Load(dir, device, dtype string, threads int) (*Model, Loaded, error) {
	cdir, cdev, cdt := C.CString(dir), C.CString(device), C.CString(dtype)
	defer C.free(unsafe.Pointer(cdir))
	defer C.free(unsafe.Pointer(cdev))
	defer C.free(unsafe.Pointer(cdt))
	var h *C.cib_candle_engine
	out := (*C.cib_candle_loaded)(C.calloc(1, C.size_t(unsafe.Sizeof(C.cib_candle_loaded{}))))
	defer C.free(unsafe.Pointer(out))
	w := newWorker()
	var err error
	w.do(func() {
		err = call(func(e *C.char, n C.size_t) C.int32_t {
			return C.cib_candle_load(cdir, cdev, cdt, C.int32_t(threads), &h, out, e, n)
		})
	})
	if err != nil {
		w.stop()
		return nil, Loaded{}, err
	}
	l := Loaded{
		ContextInitNs:     int64(out.context_init_ns),
		WeightsToHostNs:   int64(out.weights_to_host_ns),
		WeightsToDeviceNs: int64(out.weights_to_device_ns),
		Params:            int64(out.params),
		Vocab:             int64(out.vocab),
		DeviceName:        C.GoString(&out.device_name[0]),
		Settings:          parseSettings(C.GoString(&out.settings[0])),
	}
	return &Model{h: h, w: w}, l, nil
}

// Generate decodes nNew tokens greedily for batch copies of prompt. ids gets
// nNew*batch ids, step-major; ns gets nNew offsets in ns from the start of
// the Rust call, each taken right after that step's ids reached the host.
// Generate and Close must not run concurrently.
func (m *Model) Generate(prompt []uint32, nNew, batch int, ids []uint32, ns []int64) error {
	if m.h == nil {
		return &Error{Code: CodeBadArg, Message: "generate: model is closed"}
	}
	if err := checkGenerate(prompt, nNew, batch, ids, ns); err != nil {
		return err
	}
	var err error
	m.w.do(func() {
		// The slices hold no Go pointers and C keeps none of them after
		// the call, which cgo's pointer rules allow.
		err = call(func(e *C.char, n C.size_t) C.int32_t {
			return C.cib_candle_generate(m.h, (*C.uint32_t)(&prompt[0]), C.size_t(len(prompt)), C.size_t(nNew), C.size_t(batch),
				(*C.uint32_t)(&ids[0]), (*C.int64_t)(&ns[0]), e, n)
		})
	})
	return err
}

// Cancel makes a running Generate, and every later one, fail with
// CodeCancelled. It is safe to call from any goroutine at any time.
func (m *Model) Cancel() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h != nil {
		C.cib_candle_cancel(m.h)
	}
}

// Close frees the model and its thread.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h != nil {
		m.w.do(func() { C.cib_candle_free(m.h) })
		m.w.stop()
		m.h = nil
	}
	return nil
}
