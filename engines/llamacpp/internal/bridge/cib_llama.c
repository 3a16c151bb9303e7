//go:build cgo && !cuda

// cib_llama.c: see cib_llama.h. The CPU build compiles it into the engine
// by cgo (this package) and into bench/llamacpp-bench; the CUDA build
// compiles it into libcib_llama.so with llama.cpp's libraries, which the
// engine and the bench both load (scripts/build-llamacpp.sh).
#define _POSIX_C_SOURCE 200809L
#include "cib_llama.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-backend.h"
#include "ggml.h"
#include "llama.h"

struct cib_llama {
    struct llama_model * model;
    struct llama_context * ctx;
    const struct llama_vocab * vocab;
    struct llama_batch batch;
    int32_t batch_cap;  // tokens the batch holds
    int32_t n_seq;      // sequences the context holds
    int32_t n_ctx_seq;  // tokens per sequence
    int32_t n_vocab;
    atomic_int cancelled;
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void errorf(char * err, size_t n, const char * fmt, ...) {
    if (err == NULL || n == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

// Logging: llama.cpp and ggml log through one callback. Warnings and errors
// go to stderr (the engine's log); the last error-level message is kept for
// the error a failed call returns, and the flash-attention decision of
// LLAMA_FLASH_ATTN_TYPE_AUTO (not exposed by the API, only logged) is noted.
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_last_err[1024];
static char log_fa[32];
static int log_level_prev = GGML_LOG_LEVEL_INFO;
static int log_verbose = 0;

static void log_cb(enum ggml_log_level level, const char * text, void * user) {
    (void) user;
    pthread_mutex_lock(&log_mu);
    int lv = level == GGML_LOG_LEVEL_CONT ? log_level_prev : (int) level;
    log_level_prev = lv;
    if (lv >= GGML_LOG_LEVEL_WARN || log_verbose) {
        fputs(text, stderr);
    }
    if (lv >= GGML_LOG_LEVEL_ERROR) {
        // Error lines since the last reset, "; "-joined: the first usually says what failed.
        size_t have = strlen(log_last_err);
        if (have > 0 && level != GGML_LOG_LEVEL_CONT && have + 2 < sizeof log_last_err) {
            snprintf(log_last_err + have, sizeof log_last_err - have, "; ");
            have += 2;
        }
        if (have < sizeof log_last_err - 1) {
            snprintf(log_last_err + have, sizeof log_last_err - have, "%s", text);
        }
        size_t l = strlen(log_last_err);
        while (l > 0 && (log_last_err[l - 1] == '\n' || log_last_err[l - 1] == ' ')) {
            log_last_err[--l] = 0;
        }
    }
    if (strstr(text, "Flash Attention enabled") != NULL) {
        snprintf(log_fa, sizeof log_fa, "enabled");
    } else if (strstr(text, "enabling flash_attn since it is required") != NULL) {
        snprintf(log_fa, sizeof log_fa, "enabled (required)");
    } else if (strstr(text, "Flash Attention not supported") != NULL) {
        snprintf(log_fa, sizeof log_fa, "disabled (not supported)");
    }
    pthread_mutex_unlock(&log_mu);
}

static void log_reset(void) {
    pthread_mutex_lock(&log_mu);
    log_last_err[0] = 0;
    log_fa[0] = 0;
    pthread_mutex_unlock(&log_mu);
}

static void log_copy(char * dst, size_t n, const char * src) {
    pthread_mutex_lock(&log_mu);
    snprintf(dst, n, "%s", src);
    pthread_mutex_unlock(&log_mu);
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init(void) {
    const char * v = getenv("CIB_LLAMACPP_LOG");
    log_verbose = v != NULL && strcmp(v, "all") == 0;
    llama_log_set(log_cb, NULL);
    llama_backend_init();
    ggml_backend_load_all();  // static build: the compiled-in backends are already registered
}

// append writes a key=value line to buf, keeping it terminated.
static void append(char * buf, size_t n, const char * key, const char * fmt, ...) {
    size_t l = strlen(buf);
    if (l + 2 >= n) {
        return;
    }
    int k = snprintf(buf + l, n - l, "%s=", key);
    if (k < 0 || (size_t) k >= n - l) {
        buf[l] = 0;
        return;
    }
    l += (size_t) k;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + l, n - l, fmt, ap);
    va_end(ap);
    l = strlen(buf);
    if (l + 1 < n) {
        buf[l] = '\n';
        buf[l + 1] = 0;
    }
}

// devices writes "NAME (description)" of every ggml device, "; "-separated.
static void devices(char * buf, size_t n) {
    buf[0] = 0;
    for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
        ggml_backend_dev_t d = ggml_backend_dev_get(i);
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s (%s)", i ? "; " : "", ggml_backend_dev_name(d), ggml_backend_dev_description(d));
    }
}

int32_t cib_llama_info(char * buf, size_t n) {
    pthread_once(&init_once, init);
    if (buf == NULL || n == 0) {
        return CIB_ERR_BAD_ARG;
    }
    buf[0] = 0;
    append(buf, n, "llama_version", "%s", llama_version());
    append(buf, n, "ggml_version", "%s", ggml_version());
    append(buf, n, "ggml_commit", "%s", ggml_commit());
    append(buf, n, "system_info", "%s", llama_print_system_info());
    char d[1024];
    devices(d, sizeof d);
    append(buf, n, "ggml_devices", "%s", d);
    char r[512] = "";
    for (size_t i = 0; i < ggml_backend_reg_count(); i++) {
        size_t l = strlen(r);
        snprintf(r + l, sizeof r - l, "%s%s", i ? "," : "", ggml_backend_reg_name(ggml_backend_reg_get(i)));
    }
    append(buf, n, "ggml_backends", "%s", r);
    append(buf, n, "gpu_offload", "%s", llama_supports_gpu_offload() ? "yes" : "no");
    return CIB_OK;
}

static bool abort_cb(void * data) {
    return atomic_load(&((cib_llama *) data)->cancelled) != 0;
}

static int32_t load_code(const char * msg) {
    if (strstr(msg, "out of memory") || strstr(msg, "failed to allocate") || strstr(msg, "unable to allocate")) {
        return CIB_ERR_OOM;
    }
    return CIB_ERR_LOAD;
}

int32_t cib_llama_load(const cib_llama_params * p, cib_llama ** out, cib_llama_loaded * loaded, char * err, size_t n_err) {
    if (p == NULL || p->path == NULL || out == NULL || loaded == NULL || p->n_threads < 1 || p->n_seq < 1 ||
        p->n_ctx_seq < 2 || p->n_prompt < 1) {
        errorf(err, n_err, "load: bad parameters");
        return CIB_ERR_BAD_ARG;
    }
    memset(loaded, 0, sizeof *loaded);
    int64_t t0 = now_ns();
    pthread_once(&init_once, init);
    log_reset();

    ggml_backend_dev_t devs[2] = {NULL, NULL};
    char devname[32] = "CPU";
    if (p->device >= 0) {
        snprintf(devname, sizeof devname, "CUDA%d", p->device);
        devs[0] = ggml_backend_dev_by_name(devname);
        if (devs[0] == NULL) {
            char d[1024];
            devices(d, sizeof d);
            errorf(err, n_err, "device cuda:%d: no ggml device %s in this build or on this machine (devices: %s)", p->device,
                   devname, d);
            return CIB_ERR_UNSUPPORTED;
        }
    }
    int64_t t1 = now_ns();

    struct llama_model_params mp = llama_model_default_params();
    mp.devices = devs;  // CPU: the empty list, so nothing is offloaded
    mp.n_gpu_layers = p->device >= 0 ? -1 : 0;
    mp.split_mode = LLAMA_SPLIT_MODE_NONE;
    mp.main_gpu = 0;
    struct llama_model * model = llama_model_load_from_file(p->path, mp);
    int64_t t2 = now_ns();
    if (model == NULL) {
        char last[1024];
        log_copy(last, sizeof last, log_last_err);
        errorf(err, n_err, "llama_model_load_from_file %s: %s", p->path, last[0] ? last : "failed (see the log)");
        return load_code(last);
    }

    int64_t n_prompt_tokens = (int64_t) p->n_seq * p->n_prompt;
    struct llama_context_params cp = llama_context_default_params();
    cp.n_seq_max = (uint32_t) p->n_seq;
    cp.n_ctx = (uint32_t) ((int64_t) p->n_ctx_seq * p->n_seq);
    if (n_prompt_tokens > (int64_t) cp.n_batch) {
        cp.n_batch = (uint32_t) n_prompt_tokens;
    }
    if (p->n_ubatch > 0) {
        cp.n_ubatch = (uint32_t) p->n_ubatch;
    } else if (n_prompt_tokens > (int64_t) cp.n_ubatch) {
        cp.n_ubatch = (uint32_t) n_prompt_tokens;
    }
    if (cp.n_ubatch > cp.n_batch) {
        cp.n_batch = cp.n_ubatch;
    }
    cp.n_threads = p->n_threads;
    cp.n_threads_batch = p->n_threads;
    cp.flash_attn_type = (enum llama_flash_attn_type) p->flash_attn;
    if (p->type_k >= 0) {
        cp.type_k = (enum ggml_type) p->type_k;
    }
    if (p->type_v >= 0) {
        cp.type_v = (enum ggml_type) p->type_v;
    }
    cib_llama * m = calloc(1, sizeof *m);
    if (m == NULL) {
        llama_model_free(model);
        errorf(err, n_err, "load: out of host memory");
        return CIB_ERR_OOM;
    }
    atomic_init(&m->cancelled, 0);
    cp.abort_callback = abort_cb;  // llama.cpp honours it on the CPU only
    cp.abort_callback_data = m;
    struct llama_context * ctx = llama_init_from_model(model, cp);
    int64_t t3 = now_ns();
    if (ctx == NULL) {
        char last[1024];
        log_copy(last, sizeof last, log_last_err);
        errorf(err, n_err, "llama_init_from_model (n_ctx %u, n_seq_max %u, n_ubatch %u, type_k %s, type_v %s, flash_attn %s): %s",
               cp.n_ctx, cp.n_seq_max, cp.n_ubatch, ggml_type_name(cp.type_k), ggml_type_name(cp.type_v),
               llama_flash_attn_type_name(cp.flash_attn_type), last[0] ? last : "failed (see the log)");
        free(m);
        llama_model_free(model);
        return strstr(last, "requires") ? CIB_ERR_UNSUPPORTED : load_code(last);
    }
    m->model = model;
    m->ctx = ctx;
    m->vocab = llama_model_get_vocab(model);
    m->n_vocab = llama_vocab_n_tokens(m->vocab);
    m->n_seq = p->n_seq;
    m->n_ctx_seq = p->n_ctx_seq;
    m->batch_cap = (int32_t) n_prompt_tokens > p->n_seq ? (int32_t) n_prompt_tokens : p->n_seq;
    m->batch = llama_batch_init(m->batch_cap, 0, 1);

    loaded->context_init_ns = (t1 - t0) + (t3 - t2);
    loaded->model_load_ns = t2 - t1;
    loaded->params = (int64_t) llama_model_n_params(model);
    loaded->vocab = m->n_vocab;
    loaded->n_ctx_train = llama_model_n_ctx_train(model);
    snprintf(loaded->ftype, sizeof loaded->ftype, "%s", llama_ftype_name(llama_model_ftype(model)));
    if (p->device >= 0) {
        snprintf(loaded->device_name, sizeof loaded->device_name, "%s", ggml_backend_dev_description(devs[0]));
    } else {
        snprintf(loaded->device_name, sizeof loaded->device_name, "cpu");
    }

    char * s = loaded->settings;
    size_t n = sizeof loaded->settings;
    char fa[32];
    log_copy(fa, sizeof fa, log_fa);
    char desc[128];
    llama_model_desc(model, desc, sizeof desc);
    append(s, n, "model_desc", "%s", desc);
    append(s, n, "gguf_ftype", "%s", loaded->ftype);
    append(s, n, "device", "%s", p->device >= 0 ? devname : "CPU");
    append(s, n, "n_gpu_layers", "%s", p->device >= 0 ? "all" : "0");
    append(s, n, "n_layer", "%d", llama_model_n_layer(model));
    append(s, n, "n_threads", "%d", llama_n_threads(ctx));
    append(s, n, "n_threads_batch", "%d", llama_n_threads_batch(ctx));
    append(s, n, "n_ctx", "%u", llama_n_ctx(ctx));
    append(s, n, "n_ctx_seq", "%u", llama_n_ctx_seq(ctx));
    append(s, n, "n_seq_max", "%u", llama_n_seq_max(ctx));
    append(s, n, "n_batch", "%u", llama_n_batch(ctx));
    append(s, n, "n_ubatch", "%u", llama_n_ubatch(ctx));
    append(s, n, "flash_attn", "%s", llama_flash_attn_type_name(cp.flash_attn_type));
    append(s, n, "flash_attn_resolved", "%s",
           fa[0] ? fa : (cp.flash_attn_type == LLAMA_FLASH_ATTN_TYPE_ENABLED ? "enabled" : cp.flash_attn_type == LLAMA_FLASH_ATTN_TYPE_DISABLED ? "disabled" : "unknown"));
    append(s, n, "type_k", "%s", ggml_type_name(cp.type_k));
    append(s, n, "type_v", "%s", ggml_type_name(cp.type_v));
    append(s, n, "kv_unified", "%s", cp.kv_unified ? "true" : "false");
    append(s, n, "offload_kqv", "%s", cp.offload_kqv ? "true" : "false");
    append(s, n, "split_mode", "none");
    append(s, n, "load_mode", "%s", llama_load_mode_name(mp.load_mode));
    append(s, n, "sampling", "argmax of llama_get_logits_ith, lowest id on ties; EOS ignored");
    *out = m;
    return CIB_OK;
}

static int32_t argmax(const float * x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++) {
        if (x[i] > x[best]) {
            best = i;
        }
    }
    return best;
}

static void batch_add(struct llama_batch * b, llama_token id, llama_pos pos, llama_seq_id seq, bool logits) {
    int32_t i = b->n_tokens++;
    b->token[i] = id;
    b->pos[i] = pos;
    b->n_seq_id[i] = 1;
    b->seq_id[i][0] = seq;
    b->logits[i] = logits;
}

static int32_t decode_err(int32_t rc, int32_t step, char * err, size_t n_err) {
    char last[1024];
    log_copy(last, sizeof last, log_last_err);
    if (rc == 2) {
        errorf(err, n_err, "llama_decode (step %d): aborted", step);
        return CIB_ERR_CANCELLED;
    }
    errorf(err, n_err, "llama_decode (step %d) returned %d%s%s", step, rc, last[0] ? ": " : "", last);
    return rc == 1 || strstr(last, "out of memory") ? CIB_ERR_OOM : CIB_ERR_RUNTIME;
}

int32_t cib_llama_generate(cib_llama * m, const int32_t * prompt, int32_t n_prompt, int32_t n_new, int32_t batch,
                           int32_t * ids, int64_t * ns, char * err, size_t n_err) {
    if (m == NULL || prompt == NULL || ids == NULL || ns == NULL || n_prompt < 1 || n_new < 1 || batch < 1) {
        errorf(err, n_err, "generate: bad arguments");
        return CIB_ERR_BAD_ARG;
    }
    if (batch > m->n_seq || (int64_t) n_prompt * batch > m->batch_cap || n_prompt + n_new > m->n_ctx_seq) {
        errorf(err, n_err, "generate: batch %d of %d + %d tokens does not fit the context (%d sequences of %d tokens)", batch,
               n_prompt, n_new, m->n_seq, m->n_ctx_seq);
        return CIB_ERR_BAD_ARG;
    }
    for (int32_t i = 0; i < n_prompt; i++) {
        if (prompt[i] < 0 || prompt[i] >= m->n_vocab) {
            errorf(err, n_err, "generate: prompt token %d = %d is outside the vocabulary of %d", i, prompt[i], m->n_vocab);
            return CIB_ERR_BAD_ARG;
        }
    }
    if (atomic_load(&m->cancelled)) {
        errorf(err, n_err, "generate: cancelled");
        return CIB_ERR_CANCELLED;
    }
    log_reset();
    // As llama-bench does before each repetition, outside the timed span:
    // every cell freed, the buffers left as they are (data = false).
    llama_memory_clear(llama_get_memory(m->ctx), false);
    int64_t t0 = now_ns();

    // Prefill: every sequence's prompt in one llama_decode, logits of each last token.
    struct llama_batch * b = &m->batch;
    b->n_tokens = 0;
    for (int32_t s = 0; s < batch; s++) {
        for (int32_t i = 0; i < n_prompt; i++) {
            batch_add(b, prompt[i], i, s, i == n_prompt - 1);
        }
    }
    int32_t rc = llama_decode(m->ctx, *b);
    if (rc != 0) {
        return decode_err(rc, 0, err, n_err);
    }
    for (int32_t s = 0; s < batch; s++) {
        const float * logits = llama_get_logits_ith(m->ctx, (s + 1) * n_prompt - 1);
        if (logits == NULL) {
            errorf(err, n_err, "llama_get_logits_ith: no logits for sequence %d", s);
            return CIB_ERR_RUNTIME;
        }
        ids[s] = argmax(logits, m->n_vocab);
    }
    ns[0] = now_ns() - t0;

    // Decode: one token per sequence per llama_decode.
    for (int32_t step = 1; step < n_new; step++) {
        if (atomic_load(&m->cancelled)) {
            errorf(err, n_err, "generate: cancelled at step %d", step);
            return CIB_ERR_CANCELLED;
        }
        b->n_tokens = 0;
        for (int32_t s = 0; s < batch; s++) {
            batch_add(b, ids[(step - 1) * batch + s], n_prompt + step - 1, s, true);
        }
        rc = llama_decode(m->ctx, *b);
        if (rc != 0) {
            return decode_err(rc, step, err, n_err);
        }
        for (int32_t s = 0; s < batch; s++) {
            const float * logits = llama_get_logits_ith(m->ctx, s);
            if (logits == NULL) {
                errorf(err, n_err, "llama_get_logits_ith: no logits for sequence %d at step %d", s, step);
                return CIB_ERR_RUNTIME;
            }
            ids[step * batch + s] = argmax(logits, m->n_vocab);
        }
        ns[step] = now_ns() - t0;
    }
    return CIB_OK;
}

void cib_llama_cancel(cib_llama * m) {
    if (m != NULL) {
        atomic_store(&m->cancelled, 1);
    }
}

int32_t cib_llama_tokenize(cib_llama * m, const char * text, int32_t * ids, int32_t n_max, int32_t add_special) {
    if (m == NULL || text == NULL) {
        return 0;
    }
    return llama_tokenize(m->vocab, text, (int32_t) strlen(text), ids, n_max, add_special != 0, true);
}

int32_t cib_llama_piece(cib_llama * m, int32_t id, char * buf, int32_t n) {
    if (m == NULL || id < 0 || id >= m->n_vocab) {
        return 0;
    }
    return llama_token_to_piece(m->vocab, id, buf, n, 0, false);
}

void cib_llama_free(cib_llama * m) {
    if (m == NULL) {
        return;
    }
    llama_batch_free(m->batch);
    llama_free(m->ctx);
    llama_model_free(m->model);
    free(m);
}
