// cib_cupti.c: a CUPTI activity tracer that any CUDA process loads through
// CUDA_INJECTION64_PATH (the CUDA driver dlopens it at cuInit and calls
// InitializeInjection). It records kernels, memcpys and memsets with start and
// end times on the host's CLOCK_MONOTONIC (a CUPTI timestamp callback), so the
// runner can line them up with an engine's per-token timestamps, and writes
// them to $CIB_PROFILE_DIR/cupti-<pid>.bin in the format that
// profiler/FORMAT.md describes and runner/internal/profile reads.
//
// libcupti is dlopened, not linked: first by soname (a process that already
// loaded one, e.g. torch's, gets that same copy), then $CIB_CUPTI_LIB, the
// directory of this library, /usr/local/cuda/extras/CUPTI/lib64 and
// /usr/local/cuda/lib64. If none loads, the process runs unprofiled and the
// file says why (a warning record).
//
// Memory is bounded: CUPTI fills buffers from a fixed pool (CIB_PROFILE_BUFFERS
// × 2 MiB, default 16); when the pool is empty CUPTI drops records and the
// file counts them. The file stops growing at CIB_PROFILE_MAX_MB (default
// 2048), again with a count. A thread flushes completed buffers every
// CIB_PROFILE_FLUSH_MS (default 100), because Go engines leave through
// exit_group and never run atexit; processes that exit through libc also get a
// forced flush and a trailer record at exit. Without CIB_PROFILE_DIR the
// library does nothing.
#define _GNU_SOURCE
#include <cupti_activity.h>
#include <cupti_version.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
  REC_HEADER = 'H',
  REC_NAME = 'N',
  REC_KERNEL = 'K',
  REC_MEMCPY = 'M',
  REC_MEMSET = 'S',
  REC_DROPPED = 'D',
  REC_FLUSH = 'F',
  REC_WARNING = 'W',
  REC_TRAILER = 'E',
};
enum { DROP_POOL = 1, DROP_SIZE_CAP = 2, DROP_CUPTI = 3, DROP_NAMES = 4 };

#define FORMAT_VERSION 1
#define BUF_SIZE (2u << 20)
#define OUT_SIZE (1u << 20)
#define NAME_SLOTS (1u << 16)
#define NAME_MAX_IDS 60000u

static struct {
  __typeof__(cuptiActivityRegisterCallbacks) *register_callbacks;
  __typeof__(cuptiActivityRegisterTimestampCallback) *register_timestamp;
  __typeof__(cuptiActivityEnable) *enable;
  __typeof__(cuptiActivityFlushAll) *flush_all;
  __typeof__(cuptiActivityGetNextRecord) *next_record;
  __typeof__(cuptiActivityGetNumDroppedRecords) *num_dropped;
  __typeof__(cuptiGetVersion) *get_version;
  __typeof__(cuptiGetResultString) *result_string;
} api;

static pid_t owner;              // the process that opened the file; a forked child writes nothing
static int out_fd = -1;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *out_buf;
static size_t out_len;
static uint64_t out_total, out_cap, n_records;
static uint64_t dropped_size_cap, dropped_names;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t **pool_free;
static int pool_n;
static uint64_t dropped_pool;

static struct name_slot {
  char *s;
  uint32_t id;
} *names;
static uint32_t next_name = 1; // 0 = unknown or past the cap

static volatile int stopping;
static unsigned flush_ms = 100;

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t CUPTIAPI timestamp(void) { return mono_ns(); }

// out_flush writes the output buffer; out_mu held.
static void out_flush(void) {
  size_t off = 0;
  while (off < out_len) {
    ssize_t n = write(out_fd, out_buf + off, out_len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break; // disk full or closed: the reader sees a short file
    off += (size_t)n;
  }
  out_len = 0;
}

// emit appends one record (8-byte head + payload); out_mu held. Records past
// the size cap are counted, not written; the header, warnings, drop counts and
// the trailer always are.
static void emit(uint8_t type, uint8_t sub, const void *p1, uint32_t n1, const void *p2, uint32_t n2) {
  if (out_fd < 0 || getpid() != owner) return;
  uint32_t len = n1 + n2;
  int always = type == REC_HEADER || type == REC_WARNING || type == REC_DROPPED || type == REC_TRAILER || type == REC_FLUSH;
  if (!always && out_total + 8 + len > out_cap) {
    if (type != REC_NAME) dropped_size_cap++;
    return;
  }
  if (out_len + 8 + len > OUT_SIZE) out_flush();
  if (8 + len > OUT_SIZE) return;
  uint8_t head[8] = {type, sub, 0, 0};
  memcpy(head + 4, &len, 4);
  memcpy(out_buf + out_len, head, 8);
  if (n1) memcpy(out_buf + out_len + 8, p1, n1);
  if (n2) memcpy(out_buf + out_len + 8 + n1, p2, n2);
  out_len += 8 + len;
  out_total += 8 + len;
}

static void warnf(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof msg) n = sizeof msg - 1;
  fprintf(stderr, "cib_cupti: %s\n", msg);
  pthread_mutex_lock(&out_mu);
  emit(REC_WARNING, 0, msg, (uint32_t)n, NULL, 0);
  out_flush();
  pthread_mutex_unlock(&out_mu);
}

// name_id interns a kernel name, emitting its N record the first time; out_mu held.
static uint32_t name_id(const char *s) {
  if (!s || !names) return 0;
  uint32_t h = 2166136261u;
  for (const char *c = s; *c; c++) h = (h ^ (uint8_t)*c) * 16777619u;
  for (uint32_t i = 0; i < NAME_SLOTS; i++) {
    struct name_slot *sl = &names[(h + i) & (NAME_SLOTS - 1)];
    if (!sl->s) {
      if (next_name > NAME_MAX_IDS) {
        dropped_names++;
        return 0;
      }
      sl->s = strdup(s);
      if (!sl->s) return 0;
      sl->id = next_name++;
      size_t n = strlen(s);
      if (n > 4096) n = 4096;
      emit(REC_NAME, 0, &sl->id, 4, s, (uint32_t)n);
      return sl->id;
    }
    if (strcmp(sl->s, s) == 0) return sl->id;
  }
  return 0;
}

// Payloads, little-endian (x86_64), as in profiler/FORMAT.md.
struct kernel_rec {
  uint64_t start, end;
  uint32_t name, stream, corr, graph;
};
struct mem_rec {
  uint64_t start, end, bytes;
  uint32_t stream, corr, graph, device;
};

static void CUPTIAPI buffer_requested(uint8_t **buffer, size_t *size, size_t *max_records) {
  *max_records = 0;
  pthread_mutex_lock(&pool_mu);
  if (pool_n > 0) {
    *buffer = pool_free[--pool_n];
    *size = BUF_SIZE;
  } else {
    *buffer = NULL; // CUPTI drops records until a buffer comes back
    *size = 0;
    dropped_pool++;
  }
  pthread_mutex_unlock(&pool_mu);
}

static void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size, size_t valid) {
  (void)size;
  CUpti_Activity *r = NULL;
  pthread_mutex_lock(&out_mu);
  while (api.next_record(buffer, valid, &r) == CUPTI_SUCCESS) {
    switch (r->kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
      CUpti_ActivityKernel10 *k = (CUpti_ActivityKernel10 *)r;
      struct kernel_rec o = {k->start, k->end, name_id(k->name), k->streamId, k->correlationId, k->graphId};
      emit(REC_KERNEL, 0, &o, sizeof o, NULL, 0);
      n_records++;
      break;
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY: {
      CUpti_ActivityMemcpy6 *m = (CUpti_ActivityMemcpy6 *)r;
      struct mem_rec o = {m->start, m->end, m->bytes, m->streamId, m->correlationId, m->graphId, m->deviceId};
      emit(REC_MEMCPY, m->copyKind, &o, sizeof o, NULL, 0);
      n_records++;
      break;
    }
    case CUPTI_ACTIVITY_KIND_MEMSET: {
      CUpti_ActivityMemset4 *m = (CUpti_ActivityMemset4 *)r;
      struct mem_rec o = {m->start, m->end, m->bytes, m->streamId, m->correlationId, m->graphId, m->deviceId};
      emit(REC_MEMSET, 0, &o, sizeof o, NULL, 0);
      n_records++;
      break;
    }
    default:
      break;
    }
  }
  size_t dropped = 0;
  if (api.num_dropped(ctx, stream, &dropped) == CUPTI_SUCCESS && dropped > 0) {
    uint64_t d = dropped;
    emit(REC_DROPPED, DROP_CUPTI, &d, 8, NULL, 0);
  }
  out_flush();
  pthread_mutex_unlock(&out_mu);
  pthread_mutex_lock(&pool_mu);
  pool_free[pool_n++] = buffer;
  pthread_mutex_unlock(&pool_mu);
}

// emit_drops writes the pool, size-cap and name-table drop counts; out_mu held.
static void emit_drops(void) {
  uint64_t d;
  pthread_mutex_lock(&pool_mu);
  d = dropped_pool;
  dropped_pool = 0;
  pthread_mutex_unlock(&pool_mu);
  if (d) emit(REC_DROPPED, DROP_POOL, &d, 8, NULL, 0);
  if (dropped_size_cap) emit(REC_DROPPED, DROP_SIZE_CAP, &dropped_size_cap, 8, NULL, 0);
  dropped_size_cap = 0;
  if (dropped_names) emit(REC_DROPPED, DROP_NAMES, &dropped_names, 8, NULL, 0);
  dropped_names = 0;
}

// flush_marked flushes CUPTI and then writes an F record holding the time the
// flush began: the reader trusts activity that ended well before it.
static void flush_marked(uint32_t flag) {
  uint64_t t = mono_ns();
  api.flush_all(flag);
  pthread_mutex_lock(&out_mu);
  emit_drops();
  emit(REC_FLUSH, (uint8_t)flag, &t, 8, NULL, 0);
  out_flush();
  pthread_mutex_unlock(&out_mu);
}

static void *flusher(void *arg) {
  (void)arg;
  struct timespec ts = {flush_ms / 1000, (long)(flush_ms % 1000) * 1000000L};
  while (!stopping) {
    nanosleep(&ts, NULL);
    if (!stopping && getpid() == owner) flush_marked(0);
  }
  return NULL;
}

static void at_exit(void) {
  if (getpid() != owner || out_fd < 0) return;
  stopping = 1;
  flush_marked(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  pthread_mutex_lock(&out_mu);
  uint64_t tr[2] = {mono_ns(), n_records};
  emit(REC_TRAILER, 0, tr, sizeof tr, NULL, 0);
  out_flush();
  close(out_fd);
  out_fd = -1;
  pthread_mutex_unlock(&out_mu);
}

static unsigned env_uint(const char *name, unsigned def, unsigned lo, unsigned hi) {
  const char *v = getenv(name);
  if (!v || !*v) return def;
  char *end;
  unsigned long x = strtoul(v, &end, 10);
  if (*end || x < lo || x > hi) return def;
  return (unsigned)x;
}

static void *open_cupti(char *tried, size_t cap) {
  void *h = dlopen("libcupti.so.13", RTLD_NOW | RTLD_GLOBAL);
  if (h) return h;
  const char *env = getenv("CIB_CUPTI_LIB");
  char self_dir[4096] = "";
  Dl_info info;
  if (dladdr((void *)open_cupti, &info) && info.dli_fname) {
    snprintf(self_dir, sizeof self_dir, "%s", info.dli_fname);
    char *slash = strrchr(self_dir, '/');
    if (slash) strcpy(slash, "/libcupti.so.13");
    else self_dir[0] = 0;
  }
  const char *cands[] = {env, self_dir, "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so.13", "/usr/local/cuda/lib64/libcupti.so.13"};
  snprintf(tried, cap, "libcupti.so.13 (%s)", dlerror());
  for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
    if (!cands[i] || !*cands[i]) continue;
    h = dlopen(cands[i], RTLD_NOW | RTLD_GLOBAL);
    if (h) return h;
    size_t n = strlen(tried);
    snprintf(tried + n, cap - n, ", %s", cands[i]);
  }
  return NULL;
}

#define CHECK(call)                                                                                       \
  do {                                                                                                    \
    CUptiResult rc_ = (call);                                                                             \
    if (rc_ != CUPTI_SUCCESS) {                                                                           \
      const char *s_ = "?";                                                                               \
      api.result_string(rc_, &s_);                                                                        \
      warnf("%s: %s", #call, s_);                                                                         \
      return 1;                                                                                           \
    }                                                                                                     \
  } while (0)

// InitializeInjection is CUDA's injection entry point, called once per process
// from cuInit. It returns 1 on success; on any failure the process runs on
// unprofiled and the file holds a warning.
__attribute__((visibility("default"))) int InitializeInjection(void) {
  static int done;
  if (__atomic_exchange_n(&done, 1, __ATOMIC_SEQ_CST)) return 1;
  const char *dir = getenv("CIB_PROFILE_DIR");
  if (!dir || !*dir) return 1;
  owner = getpid();
  char path[4096];
  snprintf(path, sizeof path, "%s/cupti-%d.bin", dir, (int)owner);
  out_buf = malloc(OUT_SIZE);
  if (!out_buf) return 1;
  out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0) {
    fprintf(stderr, "cib_cupti: open %s: %s\n", path, strerror(errno));
    return 1;
  }
  out_cap = (uint64_t)env_uint("CIB_PROFILE_MAX_MB", 2048, 1, 1u << 20) << 20;
  flush_ms = env_uint("CIB_PROFILE_FLUSH_MS", 100, 10, 60000);
  pool_n = (int)env_uint("CIB_PROFILE_BUFFERS", 16, 2, 1024);

  // File magic, then the header record: format version, pid, ppid, CUPTI
  // version (0 until known), CLOCK_MONOTONIC and CLOCK_REALTIME now, the
  // executable path.
  static const char magic[8] = {'C', 'I', 'B', 'K', 'P', 'R', 'O', 'F'};
  uint32_t version = 0;
  char tried[2048];
  void *lib = open_cupti(tried, sizeof tried);
  if (lib) {
    api.register_callbacks = dlsym(lib, "cuptiActivityRegisterCallbacks");
    api.register_timestamp = dlsym(lib, "cuptiActivityRegisterTimestampCallback");
    api.enable = dlsym(lib, "cuptiActivityEnable");
    api.flush_all = dlsym(lib, "cuptiActivityFlushAll");
    api.next_record = dlsym(lib, "cuptiActivityGetNextRecord");
    api.num_dropped = dlsym(lib, "cuptiActivityGetNumDroppedRecords");
    api.get_version = dlsym(lib, "cuptiGetVersion");
    api.result_string = dlsym(lib, "cuptiGetResultString");
    if (api.get_version) api.get_version(&version);
  }
  struct timespec rt;
  clock_gettime(CLOCK_REALTIME, &rt);
  struct {
    uint32_t format, pid, ppid, cupti;
    uint64_t mono, real;
  } hdr = {FORMAT_VERSION, (uint32_t)owner, (uint32_t)getppid(), version, mono_ns(),
           (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec};
  char exe[1024];
  ssize_t en = readlink("/proc/self/exe", exe, sizeof exe);
  if (en < 0) en = 0;
  pthread_mutex_lock(&out_mu);
  if (write(out_fd, magic, sizeof magic) != (ssize_t)sizeof magic) {
    pthread_mutex_unlock(&out_mu);
    return 1;
  }
  emit(REC_HEADER, 0, &hdr, sizeof hdr, exe, (uint32_t)en);
  out_flush();
  pthread_mutex_unlock(&out_mu);

  if (!lib) {
    warnf("cannot load libcupti: tried %s", tried);
    return 1;
  }
  if (!api.register_callbacks || !api.register_timestamp || !api.enable || !api.flush_all || !api.next_record ||
      !api.num_dropped || !api.result_string) {
    warnf("libcupti lacks an activity API function (CUPTI version %u)", version);
    return 1;
  }
  if (version / 10000 != CUPTI_API_VERSION / 10000)
    warnf("libcupti API version %u, built against %u: record layouts may differ", version, CUPTI_API_VERSION);

  names = calloc(NAME_SLOTS, sizeof *names);
  pool_free = calloc((size_t)pool_n, sizeof *pool_free);
  if (!names || !pool_free) {
    warnf("out of memory");
    return 1;
  }
  for (int i = 0; i < pool_n; i++) {
    pool_free[i] = aligned_alloc(8, BUF_SIZE);
    if (!pool_free[i]) {
      pool_n = i;
      break;
    }
  }
  CHECK(api.register_timestamp(timestamp));
  CHECK(api.register_callbacks(buffer_requested, buffer_completed));
  CHECK(api.enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL));
  CHECK(api.enable(CUPTI_ACTIVITY_KIND_MEMCPY));
  CHECK(api.enable(CUPTI_ACTIVITY_KIND_MEMSET));
  atexit(at_exit);
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&t, &attr, flusher, NULL) != 0) warnf("no flush thread: records arrive only as buffers fill and at exit");
  pthread_attr_destroy(&attr);
  return 1;
}
