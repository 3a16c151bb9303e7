/* C ABI of the lmrs engine bridge (Rust crate cib_lmrs, src/lib.rs). */
#ifndef CIB_LMRS_H
#define CIB_LMRS_H

#include <stddef.h>
#include <stdint.h>

enum {
  CIB_OK = 0,
  CIB_ERR_BAD_ARG = 1,
  CIB_ERR_UNSUPPORTED = 2,
  CIB_ERR_LOAD = 3,
  CIB_ERR_OOM = 4,
  CIB_ERR_RUNTIME = 5,
  CIB_ERR_CANCELLED = 6,
  CIB_ERR_PANIC = 7,
};

typedef struct cib_lmrs_engine cib_lmrs_engine;

/* Cold-start breakdown; durations in ns. */
typedef struct {
  int64_t context_init_ns;
  int64_t weights_to_host_ns;
  int64_t convert_ns;
  int64_t params;
  int64_t vocab;
  int64_t max_seq;
  char settings[2048]; /* "key=value\n" lines */
} cib_lmrs_loaded;

int32_t cib_lmrs_info(char *buf, size_t len);
/* model is an lmrs file, a directory holding model.lmrs, or an HF Llama directory converted in memory to quant
 * ("f32", "q8_0", "q4_0"; "" means f32) with group_size (0: the default). */
int32_t cib_lmrs_load(const char *model, const char *quant, int32_t group_size, int32_t threads,
                      cib_lmrs_engine **out_handle, cib_lmrs_loaded *out_loaded, char *err, size_t err_len);
int32_t cib_lmrs_generate(const cib_lmrs_engine *handle, const uint32_t *prompt, size_t n_prompt, size_t n_new,
                          size_t batch, uint32_t *out_ids, int64_t *out_ns, char *err, size_t err_len);
void cib_lmrs_cancel(const cib_lmrs_engine *handle);
void cib_lmrs_free(cib_lmrs_engine *handle);

#endif
