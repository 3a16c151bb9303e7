/* C ABI of the candle engine bridge (Rust crate cib_candle, src/lib.rs). */
#ifndef CIB_CANDLE_H
#define CIB_CANDLE_H

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

typedef struct cib_candle_engine cib_candle_engine;

/* Cold-start breakdown; durations in ns. */
typedef struct {
  int64_t context_init_ns;
  int64_t weights_to_host_ns;
  int64_t weights_to_device_ns;
  int64_t params;
  int64_t vocab;
  char device_name[256];
  char settings[1024]; /* "key=value\n" lines */
} cib_candle_loaded;

int32_t cib_candle_info(char *buf, size_t len);
int32_t cib_candle_load(const char *model_dir, const char *device, const char *dtype, int32_t threads,
                        cib_candle_engine **out_handle, cib_candle_loaded *out_loaded, char *err, size_t err_len);
int32_t cib_candle_generate(const cib_candle_engine *handle, const uint32_t *prompt, size_t n_prompt, size_t n_new,
                            size_t batch, uint32_t *out_ids, int64_t *out_ns, char *err, size_t err_len);
void cib_candle_cancel(const cib_candle_engine *handle);
void cib_candle_free(cib_candle_engine *handle);

#endif
