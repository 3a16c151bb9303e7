//go:build cgo

// Package bridge is the one cgo package of the mistral.rs engine: it calls the
// C ABI of the Rust crate in engines/mistralrs/bridge (static library
// bridge/lib/libcib_mistralrs.a, built by scripts/build-mistralrs.sh).
package bridge

/*
#cgo CFLAGS: -I${SRCDIR}/../../bridge/include
#cgo LDFLAGS: -L${SRCDIR}/../../bridge/lib
#include <stdlib.h>
#include "cib_mistralrs.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime"
	"unsafe"
)

// Available reports whether the bridge is linked in (true in cgo builds).
const Available = true

const errLen = 8192

// Model is a loaded mistral.rs model. Its methods must not be called
// concurrently.
type Model struct {
	h *C.CibHandle
}

// Load loads the HF-style model directory dir on device ("cpu", "cuda:N") as
// dtype ("f32", "f16", "bf16") with the given options.
func Load(dir, device, dtype string, o Options) (*Model, LoadStats, error) {
	cdir, cdev, cdt := C.CString(dir), C.CString(device), C.CString(dtype)
	defer C.free(unsafe.Pointer(cdir))
	defer C.free(unsafe.Pointer(cdev))
	defer C.free(unsafe.Pointer(cdt))
	errBuf := (*C.char)(C.malloc(errLen))
	defer C.free(unsafe.Pointer(errBuf))
	var h *C.CibHandle
	var st C.CibLoadStats
	rc := C.cib_mistralrs_load(cdir, cdev, cdt, C.int(o.Threads), C.int(o.PagedAttention), C.int(o.Receiver), &h, &st, errBuf, errLen)
	if rc != 0 {
		return nil, LoadStats{}, &Error{Code: Code(rc), Msg: C.GoString(errBuf)}
	}
	stats := LoadStats{
		ContextInitNs: int64(st.context_init_ns),
		WeightsNs:     int64(st.weights_ns),
		EngineStartNs: int64(st.engine_start_ns),
		MaxSeqLen:     int64(st.max_seq_len),
	}
	return &Model{h: h}, stats, nil
}

// Generate produces exactly n greedy tokens after prompt. It returns the ids
// and, per token, the offset in ns from the call's start at which its
// streamed chunk reached the host.
func (m *Model) Generate(prompt []uint32, n int) (ids []uint32, tokenNs []int64, err error) {
	ids, tokenNs, _, err = m.generate(prompt, n, true)
	return ids, tokenNs, err
}

// GenerateNative runs the same request without streaming and returns
// mistral.rs's own timing of it.
func (m *Model) GenerateNative(prompt []uint32, n int) (ids []uint32, u Usage, err error) {
	ids, _, u, err = m.generate(prompt, n, false)
	return ids, u, err
}

func (m *Model) generate(prompt []uint32, n int, stream bool) ([]uint32, []int64, Usage, error) {
	if m.h == nil {
		return nil, nil, Usage{}, &Error{Code: CodeRuntime, Msg: "generate on a closed model"}
	}
	if len(prompt) == 0 || n < 1 {
		return nil, nil, Usage{}, &Error{Code: CodeBadRequest, Msg: fmt.Sprintf("generate: %d prompt tokens, %d new", len(prompt), n)}
	}
	// C memory, so the Rust side may keep pointers for the whole call without
	// cgo pointer rules getting in the way.
	cp := (*C.uint32_t)(C.malloc(C.size_t(len(prompt)) * 4))
	defer C.free(unsafe.Pointer(cp))
	copy(unsafe.Slice((*uint32)(unsafe.Pointer(cp)), len(prompt)), prompt)
	cids := (*C.uint32_t)(C.malloc(C.size_t(n) * 4))
	defer C.free(unsafe.Pointer(cids))
	cns := (*C.int64_t)(C.malloc(C.size_t(n) * 8))
	defer C.free(unsafe.Pointer(cns))
	errBuf := (*C.char)(C.malloc(errLen))
	defer C.free(unsafe.Pointer(errBuf))
	var cu C.CibUsage
	s := C.int(0)
	if stream {
		s = 1
	}
	rc := C.cib_mistralrs_generate(m.h, cp, C.size_t(len(prompt)), C.size_t(n), s, cids, cns, &cu, errBuf, errLen)
	if rc != 0 {
		return nil, nil, Usage{}, &Error{Code: Code(rc), Msg: C.GoString(errBuf)}
	}
	ids := append([]uint32(nil), unsafe.Slice((*uint32)(unsafe.Pointer(cids)), n)...)
	var tokenNs []int64
	if stream {
		tokenNs = append([]int64(nil), unsafe.Slice((*int64)(unsafe.Pointer(cns)), n)...)
	}
	u := Usage{
		PromptTokens:       int64(cu.prompt_tokens),
		CompletionTokens:   int64(cu.completion_tokens),
		PromptMs:           float64(cu.prompt_ms),
		CompletionMs:       float64(cu.completion_ms),
		TotalMs:            float64(cu.total_ms),
		AvgPromptTokPerSec: float64(cu.avg_prompt_tok_per_sec),
		AvgComplTokPerSec:  float64(cu.avg_compl_tok_per_sec),
		WallNs:             int64(cu.wall_ns),
	}
	return ids, tokenNs, u, nil
}

// Settings returns the settings in effect, as mistral.rs was configured.
func (m *Model) Settings() map[string]string {
	buf := (*C.char)(C.malloc(errLen))
	defer C.free(unsafe.Pointer(buf))
	C.cib_mistralrs_settings(m.h, buf, errLen)
	out := map[string]string{}
	_ = json.Unmarshal([]byte(C.GoString(buf)), &out)
	return out
}

// Close frees the model; further calls fail.
func (m *Model) Close() error {
	if m.h != nil {
		C.cib_mistralrs_free(m.h)
		m.h = nil
	}
	runtime.KeepAlive(m)
	return nil
}

// Versions returns component versions recorded when the crate was built
// (mistralrs-core, candle-core, rustc, features).
func Versions() map[string]string {
	out := map[string]string{}
	_ = json.Unmarshal([]byte(C.GoString(C.cib_mistralrs_versions())), &out)
	return out
}

// HasCUDA reports whether the linked crate was built with CUDA support.
func HasCUDA() bool { return C.cib_mistralrs_has_cuda() != 0 }
