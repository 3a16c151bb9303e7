//go:build cgo

package bridge

/*
#include <stdlib.h>
#include "cib_llama.h"
*/
import "C"

import (
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

// Versions returns what the linked llama.cpp reports about itself and the
// ggml devices it finds (llama_version, ggml_version, ggml_commit,
// system_info, ggml_devices, ggml_backends, gpu_offload).
func Versions() (map[string]string, error) {
	const n = 8192
	buf := (*C.char)(C.malloc(n))
	defer C.free(unsafe.Pointer(buf))
	var rc C.int32_t
	mainWorker.do(func() { rc = C.cib_llama_info(buf, n) })
	if rc != 0 {
		return nil, &Error{Code: Code(rc), Message: "info failed"}
	}
	return parseSettings(C.GoString(buf)), nil
}

// Model is a loaded model and its context.
type Model struct {
	h  *C.cib_llama
	mu sync.Mutex // orders Cancel against Close
}

// worker runs every llama.cpp call on one locked OS thread: OpenMP keeps its
// thread team per calling thread, and CUDA work stays on one host thread, as
// in a plain C program (and in llamacpp-bench).
type worker struct{ jobs chan func() }

var mainWorker = newWorker()

func newWorker() *worker {
	w := &worker{jobs: make(chan func())}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
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

// Load loads the GGUF file p.Path and makes its context.
func Load(p Params) (*Model, Loaded, error) {
	cp := (*C.cib_llama_params)(C.calloc(1, C.size_t(unsafe.Sizeof(C.cib_llama_params{}))))
	defer C.free(unsafe.Pointer(cp))
	cp.path = C.CString(p.Path)
	defer C.free(unsafe.Pointer(cp.path))
	cp.device = C.int32_t(p.Device)
	cp.n_threads = C.int32_t(p.Threads)
	cp.flash_attn = C.int32_t(p.FlashAttn)
	cp.n_ubatch = C.int32_t(p.UBatch)
	cp.type_k = C.int32_t(p.TypeK)
	cp.type_v = C.int32_t(p.TypeV)
	cp.n_ctx_seq = C.int32_t(p.CtxSeq)
	cp.n_seq = C.int32_t(p.Seqs)
	cp.n_prompt = C.int32_t(p.Prompt)
	out := (*C.cib_llama_loaded)(C.calloc(1, C.size_t(unsafe.Sizeof(C.cib_llama_loaded{}))))
	defer C.free(unsafe.Pointer(out))
	var h *C.cib_llama
	var err error
	mainWorker.do(func() {
		err = call(func(e *C.char, n C.size_t) C.int32_t { return C.cib_llama_load(cp, &h, out, e, n) })
	})
	if err != nil {
		return nil, Loaded{}, err
	}
	l := Loaded{
		ContextInitNs: int64(out.context_init_ns),
		ModelLoadNs:   int64(out.model_load_ns),
		Params:        int64(out.params),
		Vocab:         int64(out.vocab),
		CtxTrain:      int64(out.n_ctx_train),
		FType:         C.GoString(&out.ftype[0]),
		DeviceName:    C.GoString(&out.device_name[0]),
		Settings:      parseSettings(C.GoString(&out.settings[0])),
	}
	return &Model{h: h}, l, nil
}

// Generate decodes nNew tokens greedily for batch copies of prompt. ids gets
// nNew*batch ids, step-major; ns gets nNew offsets in ns from the start of the
// C call. Generate and Close must not run concurrently.
func (m *Model) Generate(prompt []int32, nNew, batch int, ids []int32, ns []int64) error {
	if m.h == nil {
		return &Error{Code: CodeBadArg, Message: "generate: model is closed"}
	}
	if err := checkGenerate(prompt, nNew, batch, ids, ns); err != nil {
		return err
	}
	var err error
	// The slices hold no Go pointers and C keeps none of them after the call.
	mainWorker.do(func() {
		err = call(func(e *C.char, n C.size_t) C.int32_t {
			return C.cib_llama_generate(m.h, (*C.int32_t)(&prompt[0]), C.int32_t(len(prompt)), C.int32_t(nNew), C.int32_t(batch),
				(*C.int32_t)(&ids[0]), (*C.int64_t)(&ns[0]), e, n)
		})
	})
	return err
}

// Tokenize encodes text with the model's own vocabulary (BOS as the model
// asks when addSpecial; special tokens are parsed).
func (m *Model) Tokenize(text string, addSpecial bool) []int32 {
	ct := C.CString(text)
	defer C.free(unsafe.Pointer(ct))
	add := C.int32_t(0)
	if addSpecial {
		add = 1
	}
	ids := make([]int32, len(text)+8)
	var n C.int32_t
	mainWorker.do(func() { n = C.cib_llama_tokenize(m.h, ct, (*C.int32_t)(&ids[0]), C.int32_t(len(ids)), add) })
	if n < 0 {
		ids = make([]int32, -n)
		mainWorker.do(func() { n = C.cib_llama_tokenize(m.h, ct, (*C.int32_t)(&ids[0]), C.int32_t(len(ids)), add) })
	}
	return ids[:max(int(n), 0)]
}

// Detokenize concatenates the text pieces of ids.
func (m *Model) Detokenize(ids []int) string {
	buf := (*C.char)(C.malloc(256))
	defer C.free(unsafe.Pointer(buf))
	var out []byte
	mainWorker.do(func() {
		for _, id := range ids {
			if n := C.cib_llama_piece(m.h, C.int32_t(id), buf, 256); n > 0 {
				out = append(out, C.GoBytes(unsafe.Pointer(buf), C.int(n))...)
			}
		}
	})
	return string(out)
}

// Cancel makes a running Generate, and every later one, fail with
// CodeCancelled. It is safe to call from any goroutine at any time.
func (m *Model) Cancel() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h != nil {
		C.cib_llama_cancel(m.h)
	}
}

// Close frees the model and its context.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h != nil {
		h := m.h
		mainWorker.do(func() { C.cib_llama_free(h) })
		m.h = nil
	}
	return nil
}
