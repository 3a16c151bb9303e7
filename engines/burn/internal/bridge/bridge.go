//go:build cgo

// Package bridge is the only cgo in the burn engine: it calls the cib_burn static
// library (engines/burn/bridge, a Llama forward written in Burn) through its C ABI.
package bridge

/*
// Link flags live in link_cpu.go / link_cuda.go (one static library per build).
#include <stdint.h>
#include <stdlib.h>

typedef struct {
	int64_t context_init_ns;
	int64_t weights_to_host_ns;
	int64_t weights_to_device_ns;
	int64_t compile_ns;
	int64_t params;
} cib_burn_loaded;

typedef struct cib_burn_model cib_burn_model;

int32_t cib_burn_info(char* buf, size_t cap);
int32_t cib_burn_store(char* buf, size_t cap);
int32_t cib_burn_load(const char* model_dir, const char* device, const char* dtype, int32_t threads,
	const char* attention, cib_burn_model** out_handle, cib_burn_loaded* out_loaded, char* err, size_t errcap);
int32_t cib_burn_describe(const cib_burn_model* h, char* buf, size_t cap);
int32_t cib_burn_generate(cib_burn_model* h, const int32_t* prompt, size_t n_prompt, size_t n_new,
	int32_t* out_ids, int64_t* out_ns, int64_t* peak_bytes, char* err, size_t errcap);
void cib_burn_free(cib_burn_model* h);
*/
import "C"

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"unsafe"
)

// Available reports whether this binary was built with the bridge linked in.
const Available = true

const errCap = 8192

func call(f func(err *C.char) C.int32_t) error {
	buf := (*C.char)(C.malloc(errCap))
	defer C.free(unsafe.Pointer(buf))
	*buf = 0
	code := int(f(buf))
	if code == codeOK {
		return nil
	}
	return &Error{Code: code, Msg: C.GoString(buf)}
}

func jsonCall(f func(buf *C.char, n C.size_t) C.int32_t) ([]byte, error) {
	for n := 4096; n <= 1<<20; n *= 4 {
		buf := (*C.char)(C.malloc(C.size_t(n)))
		code := int(f(buf, C.size_t(n)))
		s := C.GoString(buf)
		C.free(unsafe.Pointer(buf))
		switch code {
		case codeOK:
			return []byte(s), nil
		case codeBuffer:
			continue
		default:
			return nil, &Error{Code: code, Msg: "bridge call failed"}
		}
	}
	return nil, errors.New("bridge: JSON answer larger than 1 MiB")
}

// Info returns the library's build description.
func Info() (BuildInfo, error) {
	return jsonInto[BuildInfo]("info", func(buf *C.char, n C.size_t) C.int32_t { return C.cib_burn_info(buf, n) })
}

// jsonInto decodes the JSON answer of a bridge call (f, through jsonCall) into a T.
func jsonInto[T any](what string, f func(buf *C.char, n C.size_t) C.int32_t) (T, error) {
	var v T
	b, err := jsonCall(f)
	if err == nil {
		err = json.Unmarshal(b, &v)
	}
	if err != nil {
		return v, fmt.Errorf("bridge %s: %w", what, err)
	}
	return v, nil
}

// Store summarizes cubecl's persistent store (the active environment); meaningful after a CUDA Load.
func Store() (StoreSummary, error) {
	return jsonInto[StoreSummary]("store", func(buf *C.char, n C.size_t) C.int32_t { return C.cib_burn_store(buf, n) })
}

// Model is a loaded model; its methods are safe for one goroutine at a time.
type Model struct {
	mu sync.Mutex
	h  *C.cib_burn_model
}

// Load loads an HF Llama directory on device ("cpu", "cuda:N") in dtype.
func Load(dir, device, dtype string, threads int, attention string) (*Model, Loaded, error) {
	cs := []*C.char{C.CString(dir), C.CString(device), C.CString(dtype), C.CString(attention)}
	defer func() {
		for _, s := range cs {
			C.free(unsafe.Pointer(s))
		}
	}()
	if threads < 0 || threads > math.MaxInt32 {
		return nil, Loaded{}, &Error{Code: codeBadRequest, Msg: fmt.Sprintf("threads %d out of range", threads)}
	}
	var h *C.cib_burn_model
	var l C.cib_burn_loaded
	err := call(func(e *C.char) C.int32_t {
		return C.cib_burn_load(cs[0], cs[1], cs[2], C.int32_t(threads), cs[3], &h, &l, e, errCap)
	})
	if err != nil {
		return nil, Loaded{}, err
	}
	return &Model{h: h}, Loaded{
		ContextInitNs:     int64(l.context_init_ns),
		WeightsToHostNs:   int64(l.weights_to_host_ns),
		WeightsToDeviceNs: int64(l.weights_to_device_ns),
		CompileNs:         int64(l.compile_ns),
		Params:            int64(l.params),
	}, nil
}

// Describe returns the device name, compute dtype and settings in effect.
func (m *Model) Describe() (Description, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h == nil {
		return Description{}, errors.New("bridge describe: model closed")
	}
	return jsonInto[Description]("describe", func(buf *C.char, n C.size_t) C.int32_t { return C.cib_burn_describe(m.h, buf, n) })
}

// Generate greedily generates exactly n tokens after prompt. It returns the ids,
// each token's offset in ns from the start of the Rust call (taken once the id
// was on the host) and the device allocator's reserved bytes (0 if unknown).
func (m *Model) Generate(prompt []int, n int) (ids []int, offsets []int64, reserved int64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h == nil {
		return nil, nil, 0, errors.New("bridge generate: model closed")
	}
	if len(prompt) == 0 || n < 1 {
		return nil, nil, 0, &Error{Code: codeBadRequest, Msg: fmt.Sprintf("prompt of %d tokens, %d new", len(prompt), n)}
	}
	p := make([]C.int32_t, len(prompt))
	for i, t := range prompt {
		if t < 0 || t > math.MaxInt32 {
			return nil, nil, 0, &Error{Code: codeBadRequest, Msg: fmt.Sprintf("prompt token %d out of range", t)}
		}
		p[i] = C.int32_t(t)
	}
	out := make([]C.int32_t, n)
	ns := make([]C.int64_t, n)
	var peak C.int64_t
	// Go memory passed to C holds no Go pointers, so cgo rules allow it.
	err = call(func(e *C.char) C.int32_t {
		return C.cib_burn_generate(m.h, &p[0], C.size_t(len(p)), C.size_t(n), &out[0], &ns[0], &peak, e, errCap)
	})
	if err != nil {
		return nil, nil, 0, err
	}
	ids = make([]int, n)
	offsets = make([]int64, n)
	for i := range n {
		ids[i] = int(out[i])
		offsets[i] = int64(ns[i])
	}
	return ids, offsets, int64(peak), nil
}

// Close frees the model; later calls fail.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h != nil {
		C.cib_burn_free(m.h)
		m.h = nil
	}
	return nil
}
