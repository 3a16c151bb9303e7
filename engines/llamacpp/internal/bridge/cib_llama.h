// cib_llama.h: the llama.cpp decode loop shared by the llamacpp engine (through
// cgo, internal/bridge) and the native bench (bench/llamacpp-bench.c), so both
// time exactly the same calls. Plain C over llama.h; no logic beyond running
// llama.cpp the way llama-bench does.
#ifndef CIB_LLAMA_H
#define CIB_LLAMA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Return codes, equal to bridge.Code in Go.
enum {
    CIB_OK = 0,
    CIB_ERR_BAD_ARG = 1,
    CIB_ERR_UNSUPPORTED = 2,
    CIB_ERR_LOAD = 3,
    CIB_ERR_OOM = 4,
    CIB_ERR_RUNTIME = 5,
    CIB_ERR_CANCELLED = 6,
};

typedef struct cib_llama cib_llama;

typedef struct {
    const char * path;      // GGUF file
    int32_t device;         // -1: CPU only; N >= 0: all layers on the ggml device CUDA<N>
    int32_t n_threads;      // CPU threads for decode and batch (> 0)
    int32_t flash_attn;     // llama_flash_attn_type: -1 auto, 0 off, 1 on
    int32_t n_ubatch;       // physical batch; 0: max(llama.cpp's default, n_seq * n_prompt)
    int32_t type_k;         // ggml_type of the K cache; -1: llama.cpp's default (f16)
    int32_t type_v;         // ggml_type of the V cache; -1: llama.cpp's default (f16)
    int32_t n_ctx_seq;      // context per sequence, tokens (longest prompt + new tokens)
    int32_t n_seq;          // sequences decoded together (largest batch)
    int32_t n_prompt;       // longest prompt, tokens: one llama_decode takes n_seq * n_prompt
} cib_llama_params;

typedef struct {
    int64_t context_init_ns;  // llama_backend_init, device lookup, llama_init_from_model (KV cache, compute buffers)
    int64_t model_load_ns;    // llama_model_load_from_file: read (mmap) and, on a GPU, upload the weights
    int64_t params;           // llama_model_n_params
    int64_t vocab;            // llama_vocab_n_tokens
    int64_t n_ctx_train;      // llama_model_n_ctx_train
    char ftype[64];           // llama_ftype_name of the file's weights
    char device_name[256];    // ggml device description ("NVIDIA H200"), "cpu" on the CPU
    char settings[4096];      // key=value lines: what llama.cpp reports as in effect
} cib_llama_loaded;

// cib_llama_info writes key=value lines about the linked llama.cpp and the ggml
// devices it finds into buf.
int32_t cib_llama_info(char * buf, size_t n);

// cib_llama_load loads a model and makes one context for p.
int32_t cib_llama_load(const cib_llama_params * p, cib_llama ** out, cib_llama_loaded * loaded, char * err, size_t n_err);

// cib_llama_generate clears the memory (KV cache; llama_memory_clear with
// data = false, as llama-bench, before the clock starts), decodes the prompt for
// batch sequences in one llama_decode, then one token per sequence per
// llama_decode, greedy (argmax over llama_get_logits_ith, lowest id on ties),
// exactly n_new tokens, EOS ignored. ids gets n_new * batch ids, step-major;
// ns[i] is the CLOCK_MONOTONIC offset from the call's start at which step i's
// ids were on the host.
int32_t cib_llama_generate(cib_llama * m, const int32_t * prompt, int32_t n_prompt, int32_t n_new, int32_t batch,
                           int32_t * ids, int64_t * ns, char * err, size_t n_err);

// cib_llama_cancel makes a running generate, and every later one, fail with CIB_ERR_CANCELLED.
void cib_llama_cancel(cib_llama * m);

// cib_llama_tokenize encodes text with the model's own vocabulary (add_special:
// BOS as the model asks; special tokens parsed); returns the count, or
// -needed when n_max is too small.
int32_t cib_llama_tokenize(cib_llama * m, const char * text, int32_t * ids, int32_t n_max, int32_t add_special);

// cib_llama_piece writes the text of token id (no terminator) and returns its length, or -needed.
int32_t cib_llama_piece(cib_llama * m, int32_t id, char * buf, int32_t n);

void cib_llama_free(cib_llama * m);

#ifdef __cplusplus
}
#endif
#endif
