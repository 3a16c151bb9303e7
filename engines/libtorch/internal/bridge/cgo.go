//go:build cgo

package bridge

/*
#cgo LDFLAGS: -ldl
#cgo CFLAGS: -I${SRCDIR}/../../bridge
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>

#include "cib_libtorch.h" // the ABI's types and flags; the functions are reached through dlsym below
typedef int32_t (*info_fn)(char *, size_t);
typedef int32_t (*abi_fn)(void);
typedef int32_t (*load_fn)(const char *, const char *, const char *, const char *, int32_t, int32_t, int32_t, int32_t,
                           cib_lt_model **, char *, size_t, char *, size_t);
typedef int32_t (*generate_fn)(cib_lt_model *, const int64_t *, int32_t, int32_t, int64_t *, int64_t *, int64_t *,
                               int64_t *, char *, size_t);
typedef void (*free_fn)(cib_lt_model *);

static abi_fn p_abi;
static info_fn p_info;
static load_fn p_load;
static generate_fn p_generate;
static free_fn p_free;

// cib_open dlopens path (global when global != 0); NULL and dlerror() in *err on failure.
static void *cib_open(const char *path, int global, const char **err) {
	void *h = dlopen(path, RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL));
	if (!h) *err = dlerror();
	return h;
}

// cib_bind looks up the bridge's functions and checks its ABI version; the missing name (or "ABI" for another
// version), or NULL.
static const char *cib_bind(void *h) {
	if (!(p_abi = (abi_fn)dlsym(h, "cib_lt_abi_version"))) return "cib_lt_abi_version";
	if (p_abi() != CIB_LT_ABI_VERSION) return "ABI";
	if (!(p_info = (info_fn)dlsym(h, "cib_lt_info"))) return "cib_lt_info";
	if (!(p_load = (load_fn)dlsym(h, "cib_lt_load"))) return "cib_lt_load";
	if (!(p_generate = (generate_fn)dlsym(h, "cib_lt_generate"))) return "cib_lt_generate";
	if (!(p_free = (free_fn)dlsym(h, "cib_lt_free"))) return "cib_lt_free";
	return NULL;
}

static int32_t cib_info(char *buf, size_t n) { return p_info(buf, n); }
static int32_t cib_load(const char *pkg, const char *w, const char *wi, const char *dev, int32_t b, int32_t s, int32_t g,
                        int32_t t, cib_lt_model **m, char *info, size_t in, char *err, size_t en) {
	return p_load(pkg, w, wi, dev, b, s, g, t, m, info, in, err, en);
}
static int32_t cib_generate(cib_lt_model *m, const int64_t *p, int32_t np, int32_t nn, int64_t *ids, int64_t *hns,
                            int64_t *dns, int64_t *peak, char *err, size_t en) {
	return p_generate(m, p, np, nn, ids, hns, dns, peak, err, en);
}
static void cib_free(cib_lt_model *m) { p_free(m); }
static int cib_opened(void) { return p_info != NULL; }
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"unsafe"
)

const errLen = 8192

var (
	openOnce sync.Once
	openErr  error
)

// Open loads libtorch from p.TorchLib and then the bridge; later calls return the first call's result.
func Open(p Paths) error {
	openOnce.Do(func() { openErr = open(p) })
	return openErr
}

func open(p Paths) error {
	if _, err := os.Stat(p.Bridge); err != nil {
		return &Error{Code: CodeOpen, Message: fmt.Sprintf("libtorch bridge %s: %v (build it with scripts/build-libtorch.sh, or set CIB_LIBTORCH_BRIDGE)", p.Bridge, err)}
	}
	if p.TorchLib != "" {
		if _, err := os.Stat(filepath.Join(p.TorchLib, "libtorch.so")); err != nil {
			return &Error{Code: CodeOpen, Message: fmt.Sprintf("libtorch: %v (set CIB_TORCH_LIB to a torch wheel's torch/lib directory, or CIB_PYTHON to an interpreter with torch)", err)}
		}
		for _, name := range torchLibs {
			path := filepath.Join(p.TorchLib, name)
			if _, err := os.Stat(path); err != nil {
				continue // a CPU-only wheel has no CUDA libraries; the bridge's dlopen names what is missing
			}
			if err := dlopen(path, true); err != nil {
				return &Error{Code: CodeOpen, Message: fmt.Sprintf("libtorch: %v", err)}
			}
		}
	}
	cpath := C.CString(p.Bridge)
	defer C.free(unsafe.Pointer(cpath))
	var cerr *C.char
	h := C.cib_open(cpath, 0, &cerr)
	if h == nil {
		return &Error{Code: CodeOpen, Message: fmt.Sprintf("libtorch bridge: dlopen: %s", C.GoString(cerr))}
	}
	if missing := C.cib_bind(h); missing != nil {
		if m := C.GoString(missing); m == "ABI" || m == "cib_lt_abi_version" {
			return &Error{Code: CodeOpen, Message: fmt.Sprintf("libtorch bridge %s was built for another ABI than this engine's (%d): rebuild it (scripts/build-libtorch.sh)", p.Bridge, C.CIB_LT_ABI_VERSION)}
		}
		return &Error{Code: CodeOpen, Message: fmt.Sprintf("libtorch bridge %s: no symbol %s", p.Bridge, C.GoString(missing))}
	}
	return nil
}

func dlopen(path string, global bool) error {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	g := C.int(0)
	if global {
		g = 1
	}
	var cerr *C.char
	if C.cib_open(cpath, g, &cerr) == nil {
		return fmt.Errorf("dlopen: %s", C.GoString(cerr))
	}
	return nil
}

func mustOpen() error {
	if C.cib_opened() == 0 {
		return &Error{Code: CodeOpen, Message: "libtorch bridge: not opened"}
	}
	return nil
}

// Info returns the bridge's JSON object about the runtime (libtorch version at run time and of its headers,
// CUDA, cuda device count).
func Info() (string, error) {
	if err := mustOpen(); err != nil {
		return "", err
	}
	buf := (*C.char)(C.malloc(errLen))
	defer C.free(unsafe.Pointer(buf))
	if rc := C.cib_info(buf, errLen); rc != 0 {
		return "", &Error{Code: Code(rc), Message: "info: " + C.GoString(buf)}
	}
	return C.GoString(buf), nil
}

// Model is a loaded package on the C++ side.
type Model struct {
	h     *C.cib_lt_model
	batch int
}

// Load loads the AOTInductor package pkg on device, with its weights from the safetensors file weights as
// weightsIndex lists them (export.WeightsIndex; "" for a package that carries its weights; models of one process
// share a file's tensors), for batch rows and a static cache of maxSeq positions, with
// the decode step captured in a CUDA graph when cudaGraphs and each token awaited on a blocking-sync event
// (the host thread sleeps) when blockingWait. It returns the bridge's JSON object of load timings (ns) and
// settings.
func Load(pkg, weights, weightsIndex, device string, batch, maxSeq int, cudaGraphs, blockingWait bool, threads int) (*Model, string, error) {
	if err := mustOpen(); err != nil {
		return nil, "", err
	}
	cpkg, cw, cwi, cdev := C.CString(pkg), C.CString(weights), C.CString(weightsIndex), C.CString(device)
	defer C.free(unsafe.Pointer(cpkg))
	defer C.free(unsafe.Pointer(cw))
	defer C.free(unsafe.Pointer(cwi))
	defer C.free(unsafe.Pointer(cdev))
	info := (*C.char)(C.malloc(errLen))
	defer C.free(unsafe.Pointer(info))
	errBuf := (*C.char)(C.malloc(errLen))
	defer C.free(unsafe.Pointer(errBuf))
	*info, *errBuf = 0, 0
	g := C.int32_t(0)
	if cudaGraphs {
		g |= C.CIB_LT_CUDA_GRAPHS
	}
	if blockingWait {
		g |= C.CIB_LT_BLOCKING_WAIT
	}
	var h *C.cib_lt_model
	rc := C.cib_load(cpkg, cw, cwi, cdev, C.int32_t(batch), C.int32_t(maxSeq), g, C.int32_t(threads), &h, info, errLen, errBuf, errLen)
	if rc != 0 {
		return nil, "", &Error{Code: Code(rc), Message: C.GoString(errBuf)}
	}
	return &Model{h: h, batch: batch}, C.GoString(info), nil
}

// Generate runs greedy generation of nNew tokens for the model's batch copies of prompt. ids gets nNew*batch
// ids, step-major; hostNs the offset in ns of each step from the start of the C++ call when its ids were on
// the host; deviceNs (nil, or nNew long; cuda only) the same from CUDA events. It returns the CUDA caching
// allocator's peak bytes during the call (0 on cpu).
func (m *Model) Generate(prompt []int64, nNew int, ids, hostNs, deviceNs []int64) (int64, error) {
	if m.h == nil {
		return 0, &Error{Code: CodeBadArg, Message: "generate: model is closed"}
	}
	if err := checkGenerate(prompt, nNew, m.batch, ids, hostNs); err != nil {
		return 0, err
	}
	var dns *C.int64_t
	if len(deviceNs) >= nNew {
		dns = (*C.int64_t)(&deviceNs[0])
	}
	errBuf := (*C.char)(C.malloc(errLen))
	defer C.free(unsafe.Pointer(errBuf))
	*errBuf = 0
	var peak C.int64_t
	// The slices hold no Go pointers and C keeps none of them after the call, which cgo's pointer rules allow.
	rc := C.cib_generate(m.h, (*C.int64_t)(&prompt[0]), C.int32_t(len(prompt)), C.int32_t(nNew),
		(*C.int64_t)(&ids[0]), (*C.int64_t)(&hostNs[0]), dns, &peak, errBuf, errLen)
	if rc != 0 {
		return 0, &Error{Code: Code(rc), Message: C.GoString(errBuf)}
	}
	return int64(peak), nil
}

// Close frees the model.
func (m *Model) Close() error {
	if m.h != nil {
		C.cib_free(m.h)
		m.h = nil
	}
	return nil
}
