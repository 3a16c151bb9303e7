/* cib_libtorch.h: the C ABI of the libtorch bridge (libcib_libtorch.so), loaded with dlopen by the Go engine.
 *
 * Every function returns 0 on success or a CIB_LT_* code, with a message in err (NUL-terminated, at most
 * err_len bytes). Nothing here needs Python: the model is an AOTInductor package (.pt2) holding two models,
 * "prefill" and "decode", made by the engine's export step. */
#ifndef CIB_LIBTORCH_H
#define CIB_LIBTORCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
  CIB_LT_OK = 0,
  CIB_LT_BAD_ARG = 1,     /* the caller got something wrong */
  CIB_LT_UNSUPPORTED = 2, /* valid, but this build or package cannot serve it */
  CIB_LT_OOM = 3,         /* device or host out of memory */
  CIB_LT_FAILED = 4,      /* anything else */
};

#define CIB_LT_API __attribute__((visibility("default")))

typedef struct cib_lt_model cib_lt_model;

/* The ABI's version: cib_lt_abi_version returns it, and the Go side refuses a bridge built for another (a stale
 * libcib_libtorch.so would be called with the wrong arguments). 2: cib_lt_load takes a weights file. */
#define CIB_LT_ABI_VERSION 2
CIB_LT_API int32_t cib_lt_abi_version(void);

/* cib_lt_info writes a JSON object about the runtime into buf: libtorch version at run time (from
 * at::show_config) and of the headers the bridge was built with, CUDA version, cuda device count, CXX11 ABI. */
CIB_LT_API int32_t cib_lt_info(char *buf, size_t len);

/* Flags of cib_lt_load (cuda only; either on cpu is CIB_LT_UNSUPPORTED). */
enum {
  CIB_LT_CUDA_GRAPHS = 1,   /* capture the decode step into one CUDA graph, replayed per token */
  CIB_LT_BLOCKING_WAIT = 2, /* wait for each token on a cudaEventBlockingSync event: the host thread sleeps
                             * instead of spinning, so its CPU time is the work it does, not the wait */
};

/* cib_lt_load loads package (a .pt2 with models "prefill" and "decode") on device ("cpu" or "cuda:N"), with the
 * models' weights from the file weights (safetensors, for a package exported without weights; NULL or "" for one
 * whose prefill model carries them; models of one process share a file's tensors) as weights_index lists them
 * ("name\tdtype\toffset\tbytes\td0,d1,...\n" per tensor, offsets from the file's start, dtype as safetensors
 * names it), for
 * batch rows and a static KV cache of max_seq positions, with flags (CIB_LT_CUDA_GRAPHS | CIB_LT_BLOCKING_WAIT);
 * threads > 0 sets the intra-op thread count. It checks the package's torch version against the runtime's. On
 * success *out is the model and info (len info_len) holds a JSON object of load timings (ns) and settings. */
CIB_LT_API int32_t cib_lt_load(const char *package, const char *weights, const char *weights_index, const char *device, int32_t batch, int32_t max_seq, int32_t flags,
                    int32_t threads, cib_lt_model **out, char *info, size_t info_len, char *err, size_t err_len);

/* cib_lt_generate runs greedy generation for one prompt (n_prompt ids, the same for every row): prefill, then
 * one decode call per token. ids receives n_new*batch token ids (step-major), host_ns the steady-clock offset
 * of each step from the call's start when its ids were on the host, device_ns (may be NULL; cuda only) the
 * same from CUDA events, and *peak_alloc the caching allocator's peak bytes (cuda; 0 on cpu). */
CIB_LT_API int32_t cib_lt_generate(cib_lt_model *m, const int64_t *prompt, int32_t n_prompt, int32_t n_new, int64_t *ids,
                        int64_t *host_ns, int64_t *device_ns, int64_t *peak_alloc, char *err, size_t err_len);

/* cib_lt_free releases the model. */
CIB_LT_API void cib_lt_free(cib_lt_model *m);

#ifdef __cplusplus
}
#endif
#endif
