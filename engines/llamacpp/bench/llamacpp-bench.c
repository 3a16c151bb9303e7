// llamacpp-bench: the llamacpp engine's decode loop (internal/bridge/cib_llama.c,
// the same C the engine runs) with no Go and no protocol, to check the
// runner's figure for adapter overhead. Built by scripts/build-llamacpp.sh.
//
//   llamacpp-bench MODEL.gguf [--device cuda:0] [--prompt-len 128] [--new 256] [--batch 1]
//                  [--warmup 2] [--iters 5] [--threads 0] [--seed 1] [--case p128-n256]
//                  [--flash-attn auto|on|off] [--n-ubatch N] [--type-k f16] [--type-v f16] [--dtype X]
//
// The prompt ids are the runner's for that seed and case name (runner/internal/
// workload.Prompt: splitmix64 over [3, vocab)). --dtype is accepted for the
// other benches' command lines and only printed: the GGUF's type is what runs
// (`llamacpp gguf HF_DIR --type bf16` converts an HF directory as the engine
// does and prints the file). Per iteration it prints TTFT (prefill of the
// prompt batch and the first token), prefill tok/s, decode tok/s =
// (N-1) / (t_last - t_first) and E2E; last the medians over the timed
// iterations, on lines starting "median_decode_tok_s" and "median_ttft_ms".
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cib_llama.h"

static const uint64_t golden = 0x9e3779b97f4a7c15ULL;

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// runner_prompt mirrors runner/internal/workload.Prompt.
static void runner_prompt(uint64_t seed, const char * name, int n, int vocab, int32_t * out) {
    uint64_t state = seed ^ golden;
    for (const unsigned char * b = (const unsigned char *) name; *b; b++) {
        state = mix(state ^ *b);
    }
    uint64_t span = vocab - 3 > 1 ? (uint64_t) (vocab - 3) : 1;
    for (int i = 0; i < n; i++) {
        state += golden;
        out[i] = (int32_t) (3 + mix(state) % span);
    }
}

static int cmp(const void * a, const void * b) {
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

static double median(double * v, int n) {
    qsort(v, n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int cache_type(const char * s) {
    static const struct {
        const char * name;
        int type;
    } t[] = {{"f32", 0}, {"f16", 1}, {"q4_0", 2}, {"q4_1", 3}, {"q5_0", 6}, {"q5_1", 7}, {"q8_0", 8}, {"bf16", 30}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (strcmp(s, t[i].name) == 0) {
            return t[i].type;
        }
    }
    fprintf(stderr, "llamacpp-bench: cache type %s: want f32, f16, bf16, q8_0, q4_0, q4_1, q5_0 or q5_1\n", s);
    exit(64);
}

static void usage(void) {
    fprintf(stderr,
            "usage: llamacpp-bench MODEL.gguf [--device cpu|cuda:N] [--prompt-len N] [--new N] [--batch N] [--warmup N] [--iters N]\n"
            "       [--threads N] [--seed N] [--case NAME] [--flash-attn auto|on|off] [--n-ubatch N] [--type-k T] [--type-v T] [--dtype X]\n");
    exit(64);
}

int main(int argc, char ** argv) {
    const char * model = NULL, * device = "cpu", * dtype = "(the GGUF's)", * case_name = NULL;
    int prompt_len = 128, n_new = 256, batch = 1, warmup = 2, iters = 5, threads = 0, ubatch = 0, fa = -1;
    int type_k = -1, type_v = -1;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char * a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            model = a;
            continue;
        }
        if (i + 1 >= argc) {
            usage();
        }
        const char * v = argv[++i];
        if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--dtype")) dtype = v;
        else if (!strcmp(a, "--prompt-len")) prompt_len = atoi(v);
        else if (!strcmp(a, "--new")) n_new = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--iters")) iters = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--case")) case_name = v;
        else if (!strcmp(a, "--n-ubatch")) ubatch = atoi(v);
        else if (!strcmp(a, "--type-k")) type_k = cache_type(v);
        else if (!strcmp(a, "--type-v")) type_v = cache_type(v);
        else if (!strcmp(a, "--flash-attn")) fa = !strcmp(v, "on") ? 1 : !strcmp(v, "off") ? 0 : !strcmp(v, "auto") ? -1 : -2;
        else {
            fprintf(stderr, "llamacpp-bench: unknown flag %s\n", a);
            usage();
        }
    }
    if (model == NULL || prompt_len < 1 || n_new < 2 || iters < 1 || warmup < 0 || batch < 1 || fa == -2) {
        usage();
    }
    int dev = -1;
    if (strncmp(device, "cuda:", 5) == 0) {
        dev = atoi(device + 5);
    } else if (strcmp(device, "cpu") != 0) {
        fprintf(stderr, "llamacpp-bench: device %s: want cpu or cuda:N\n", device);
        return 64;
    }
    if (threads <= 0) {  // the engine's default: every CPU this process may run on (Go's runtime.NumCPU)
        cpu_set_t set;
        threads = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    }
    char default_case[64];
    if (case_name == NULL) {
        snprintf(default_case, sizeof default_case, "p%d-n%d", prompt_len, n_new);
        case_name = default_case;
    }

    cib_llama_params p = {
        .path = model, .device = dev, .n_threads = threads, .flash_attn = fa, .n_ubatch = ubatch,
        .type_k = type_k, .type_v = type_v, .n_ctx_seq = prompt_len + n_new, .n_seq = batch, .n_prompt = prompt_len,
    };
    cib_llama * m = NULL;
    static cib_llama_loaded l;
    char err[4096] = "";
    if (cib_llama_load(&p, &m, &l, err, sizeof err) != CIB_OK) {
        fprintf(stderr, "llamacpp-bench: %s\n", err);
        return 1;
    }
    printf("loaded %s on %s (%s), weights %s (requested dtype %s): context %.1f ms, model load %.1f ms, %lld params\n", model,
           device, l.device_name, l.ftype, dtype, l.context_init_ns / 1e6, l.model_load_ns / 1e6, (long long) l.params);
    for (char * s = l.settings; *s;) {
        char * nl = strchr(s, '\n');
        if (nl == NULL) break;
        printf("  %.*s\n", (int) (nl - s), s);
        s = nl + 1;
    }

    int32_t * prompt = malloc(sizeof *prompt * prompt_len);
    int32_t * ids = malloc(sizeof *ids * n_new * batch);
    int64_t * ns = malloc(sizeof *ns * n_new);
    double * rates = malloc(sizeof *rates * iters), * ttfts = malloc(sizeof *ttfts * iters);
    runner_prompt(seed, case_name, prompt_len, (int) l.vocab, prompt);
    for (int it = 0; it < warmup + iters; it++) {
        if (cib_llama_generate(m, prompt, prompt_len, n_new, batch, ids, ns, err, sizeof err) != CIB_OK) {
            fprintf(stderr, "llamacpp-bench: %s\n", err);
            return 1;
        }
        int warm = it < warmup;
        double ttft = ns[0] / 1e6, e2e = ns[n_new - 1] / 1e6;
        double rate = (double) (n_new - 1) * batch / ((ns[n_new - 1] - ns[0]) / 1e9);
        printf("%s %d: ttft %.2f ms, prefill %.1f tok/s, decode %.2f tok/s, e2e %.2f ms, first ids [", warm ? "warmup" : "iter",
               warm ? it : it - warmup, ttft, prompt_len * batch / (ttft / 1e3), rate, e2e);
        for (int i = 0; i < n_new && i < 8; i++) {
            printf("%s%d", i ? ", " : "", ids[i * batch]);
        }
        printf("]\n");
        fflush(stdout);
        if (!warm) {
            rates[it - warmup] = rate;
            ttfts[it - warmup] = ttft;
        }
    }
    printf("median_decode_tok_s %.2f (case %s, prompt %d, new %d, batch %d, %d iterations, %s, weights %s)\n", median(rates, iters),
           case_name, prompt_len, n_new, batch, iters, device, l.ftype);
    printf("median_ttft_ms %.3f\n", median(ttfts, iters));
    cib_llama_free(m);
    return 0;
}
