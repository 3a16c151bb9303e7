// cib_libtorch.cpp: the libtorch bridge. It runs an AOTInductor package (models "prefill" and "decode") through
// torch::inductor::AOTIModelPackageLoader and owns the whole decode loop: prefill, one decode call per token,
// greedy argmax on the device (inside the compiled models), per-token host timestamps. No Python.
//
// The decode model reads the current token and position from device tensors and writes the next token and
// position back in place (input mutation), and both models write the static KV cache in place, so the decode
// step needs no host input and can be replayed as one CUDA graph.

#include "cib_libtorch.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <c10/core/Device.h>
#include <c10/util/Exception.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/version.h>

#ifdef CIB_LT_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

struct Failure : std::runtime_error {
  int32_t code;
  Failure(int32_t c, const std::string &m) : std::runtime_error(m), code(c) {}
};

void put(char *buf, size_t len, const std::string &s) {
  if (buf == nullptr || len == 0) return;
  size_t n = std::min(len - 1, s.size());
  std::memcpy(buf, s.data(), n);
  buf[n] = 0;
}

std::string quote(const std::string &s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// guard runs f, turning every exception into a return code and a message.
template <class F>
int32_t guard(char *err, size_t err_len, F f) {
  try {
    f();
    return CIB_LT_OK;
  } catch (const Failure &e) {
    put(err, err_len, e.what());
    return e.code;
  } catch (const c10::OutOfMemoryError &e) {
    put(err, err_len, std::string("out of memory: ") + e.what_without_backtrace());
    return CIB_LT_OOM;
  } catch (const c10::Error &e) {
    put(err, err_len, e.what_without_backtrace());
    return CIB_LT_FAILED;
  } catch (const std::bad_alloc &) {
    put(err, err_len, "out of host memory");
    return CIB_LT_OOM;
  } catch (const std::exception &e) {
    put(err, err_len, e.what());
    return CIB_LT_FAILED;
  } catch (...) {
    put(err, err_len, "unknown C++ exception");
    return CIB_LT_FAILED;
  }
}

// build_setting returns KEY's value from at::show_config()'s build settings ("KEY=value, ..."): it is what the
// loaded libtorch says about itself at run time, not what the headers said at build time.
std::string build_setting(const std::string &cfg, const std::string &key) {
  auto at = cfg.find(key + "=");
  if (at == std::string::npos) return "";
  at += key.size() + 1;
  auto end = cfg.find_first_of(", \n", at);
  return cfg.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// runtime_version returns the loaded libtorch's version as torch.__version__ writes it (2.11.0+cu130).
std::string runtime_version() {
  std::string cfg = at::show_config();
  std::string v = build_setting(cfg, "TORCH_VERSION");
  if (v.empty()) return "unknown";
  std::string cuda = build_setting(cfg, "CUDA_VERSION");
  if (!cuda.empty()) {
    std::string digits;
    for (char c : cuda)
      if (c != '.') digits += c;
    v += "+cu" + digits;
  }
  return v;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool cuda_available() {
#ifdef CIB_LT_CUDA
  return c10::cuda::device_count() > 0;
#else
  return false;
#endif
}

}  // namespace

// Weights are the tensors of a weights file (safetensors written by the export, tensors named by fqn) on one
// device. Every model of the process loaded from the same file onto the same device shares them: a second
// batch size costs no second copy.
struct Weights {
  std::unordered_map<std::string, at::Tensor> by_fqn;
  int64_t to_device_ns = 0;
  int64_t bytes = 0;
};

std::mutex weights_mu;
std::map<std::string, std::weak_ptr<Weights>> weights_cache;

at::ScalarType weight_dtype(const std::string &d) {
  if (d == "BF16") return at::kBFloat16;
  if (d == "F16") return at::kHalf;
  if (d == "F32") return at::kFloat;
  if (d == "F64") return at::kDouble;
  if (d == "I64") return at::kLong;
  if (d == "I32") return at::kInt;
  if (d == "I8") return at::kChar;
  if (d == "U8") return at::kByte;
  if (d == "BOOL") return at::kBool;
  throw Failure(CIB_LT_BAD_ARG, "load: weights index: dtype " + d);
}

// load_weights maps path and copies each tensor the index names ("name\tdtype\toffset\tbytes\td0,d1,...\n",
// offsets from the file's start: the Go side parses the safetensors header) to the device; on cpu into fresh,
// aligned tensors. The mapping is gone when it returns: the copies are all that stays.
std::shared_ptr<Weights> load_weights(const std::string &path, const std::string &index, const c10::Device &dev, bool *shared) {
  std::lock_guard<std::mutex> lock(weights_mu);
  const std::string key = path + "|" + dev.str();
  if (auto w = weights_cache[key].lock()) {
    *shared = true;
    return w;
  }
  *shared = false;
  auto w = std::make_shared<Weights>();
  int64_t t = now_ns();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Failure(CIB_LT_FAILED, "load: open weights file " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    throw Failure(CIB_LT_FAILED, "load: stat weights file " + path + ": " + std::strerror(e));
  }
  void *base = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (base == MAP_FAILED) throw Failure(CIB_LT_FAILED, "load: map weights file " + path + ": " + std::strerror(errno));
  madvise(base, static_cast<size_t>(st.st_size), MADV_SEQUENTIAL);
  struct Unmap {
    void *p;
    size_t n;
    ~Unmap() { munmap(p, n); }
  } unmap{base, static_cast<size_t>(st.st_size)};
  std::istringstream lines(index);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    std::istringstream f(line);
    std::string name, dt, off_s, n_s, dims_s;
    if (!std::getline(f, name, '\t') || !std::getline(f, dt, '\t') || !std::getline(f, off_s, '\t') || !std::getline(f, n_s, '\t'))
      throw Failure(CIB_LT_BAD_ARG, "load: weights index line " + quote(line));
    std::getline(f, dims_s);
    int64_t off = std::stoll(off_s), n = std::stoll(n_s);
    std::vector<int64_t> dims;
    std::istringstream d(dims_s);
    for (std::string x; std::getline(d, x, ',');)
      if (!x.empty()) dims.push_back(std::stoll(x));
    if (off < 0 || n < 0 || off + n > st.st_size)
      throw Failure(CIB_LT_BAD_ARG, "load: weights index: " + name + " lies outside " + path);
    auto view = at::from_blob(static_cast<char *>(base) + off, dims, at::TensorOptions().dtype(weight_dtype(dt)));
    if (view.nbytes() != static_cast<size_t>(n)) throw Failure(CIB_LT_BAD_ARG, "load: weights index: " + name + ": size does not match its shape");
    w->by_fqn[name] = dev.is_cpu() ? view.clone() : view.to(dev);
    w->bytes += n;
  }
#ifdef CIB_LT_CUDA
  if (dev.is_cuda()) c10::cuda::device_synchronize();
#endif
  w->to_device_ns = now_ns() - t;
  weights_cache[key] = w;
  return w;
}

// use_weights hands a model (loaded without constants) the tensors it names, as user-managed constants (no copy).
void use_weights(torch::inductor::AOTIModelPackageLoader &ldr, const Weights &w, const std::string &path, const char *which) {
  std::unordered_map<std::string, at::Tensor> mine;
  for (const auto &fqn : ldr.get_constant_fqns()) {
    auto it = w.by_fqn.find(fqn);
    if (it == w.by_fqn.end())
      throw Failure(CIB_LT_FAILED, std::string("load: constant ") + fqn + " of the " + which + " model is not in the weights file " + path +
                                       " (export again)");
    mine[fqn] = it->second;
  }
  ldr.load_constants(mine, false, true, true);
}

struct cib_lt_model {
  c10::Device device{c10::kCPU};
  int32_t batch = 0, max_seq = 0;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> prefill, decode;
  std::shared_ptr<struct Weights> weights;  // the models' constants when they come from a weights file (user-managed)
  std::vector<at::Tensor> caches;  // k0, v0, k1, v1, ... [batch, kv_heads, max_seq, head_dim]
  at::Tensor tok;                  // [batch, 1] int64: the current token, written by decode
  at::Tensor pos;                  // [1] int64: the current position, advanced by decode
  at::Tensor ring;                 // [n, batch] int64 host (pinned on cuda): the tokens, one row per step
  std::vector<at::Tensor> decode_in;
#ifdef CIB_LT_CUDA
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  std::unique_ptr<c10::cuda::CUDAStream> stream;
  std::vector<at::cuda::CUDAEvent> fences;
  std::unique_ptr<at::cuda::CUDAEvent> start;
#endif
  unsigned event_flags = 0;  // cudaEventDefault (timing on), | cudaEventBlockingSync with CIB_LT_BLOCKING_WAIT

  bool cuda() const { return device.is_cuda(); }

  void *stream_handle() {
#ifdef CIB_LT_CUDA
    if (cuda()) return stream->stream();
#endif
    return nullptr;
  }

  void step() {
#ifdef CIB_LT_CUDA
    if (graph) {
      graph->replay();
      return;
    }
#endif
    decode->run(decode_in, stream_handle());
  }

  void ensure(int32_t n) {
    if (ring.defined() && ring.size(0) >= n) return;
    auto opts = at::TensorOptions().dtype(at::kLong).pinned_memory(cuda());
    ring = at::zeros({n, batch}, opts);
#ifdef CIB_LT_CUDA
    while (cuda() && static_cast<int32_t>(fences.size()) < n) fences.emplace_back(event_flags);
#endif
  }
};

extern "C" int32_t cib_lt_info(char *buf, size_t len) {
  char err[512];
  std::string out;
  int32_t rc = guard(err, sizeof err, [&] {
    std::ostringstream o;
    std::string cfg = at::show_config();
    o << "{\"libtorch\":" << quote(runtime_version()) << ",\"headers\":" << quote(TORCH_VERSION)
      << ",\"cuda\":" << quote(build_setting(cfg, "CUDA_VERSION")) << ",\"cudnn\":"
      << quote(build_setting(cfg, "CUDNN_VERSION")) << ",\"cxx11_abi\":" << (_GLIBCXX_USE_CXX11_ABI ? "true" : "false")
      << ",\"bridge_cuda\":" << (
#ifdef CIB_LT_CUDA
                                    "true"
#else
                                    "false"
#endif
                                    )
      << ",\"cuda_devices\":";
#ifdef CIB_LT_CUDA
    int n = static_cast<int>(c10::cuda::device_count());
    o << n << ",\"cuda_names\":[";
    for (int i = 0; i < n; i++) {
      cudaDeviceProp p;
      o << (i ? "," : "") << quote(cudaGetDeviceProperties(&p, i) == cudaSuccess ? p.name : "unknown");
    }
    o << "]";
#else
    o << "0,\"cuda_names\":[]";
#endif
    o << "}";
    out = o.str();
  });
  if (rc != CIB_LT_OK) {
    put(buf, len, err);
    return rc;
  }
  if (out.size() + 1 > len) {
    put(buf, len, "info: buffer too small");
    return CIB_LT_BAD_ARG;
  }
  put(buf, len, out);
  return CIB_LT_OK;
}

extern "C" int32_t cib_lt_abi_version(void) { return CIB_LT_ABI_VERSION; }

extern "C" int32_t cib_lt_load(const char *package, const char *weights, const char *weights_index, const char *device, int32_t batch, int32_t max_seq,
                               int32_t flags, int32_t threads, cib_lt_model **out, char *info,
                               size_t info_len, char *err, size_t err_len) {
  return guard(err, err_len, [&] {
    if (package == nullptr || device == nullptr || out == nullptr) throw Failure(CIB_LT_BAD_ARG, "load: null argument");
    if (batch < 1 || max_seq < 2) throw Failure(CIB_LT_BAD_ARG, "load: batch < 1 or max_seq < 2");
    *out = nullptr;
    int64_t t0 = now_ns();
    auto m = std::make_unique<cib_lt_model>();
    m->batch = batch;
    m->max_seq = max_seq;
    std::string dev(device);
    try {
      m->device = c10::Device(dev == "cuda" ? "cuda:0" : dev);
    } catch (const c10::Error &) {
      throw Failure(CIB_LT_BAD_ARG, "load: device " + quote(dev) + ": want cpu or cuda:N");
    }
    if (m->cuda() && !cuda_available()) throw Failure(CIB_LT_UNSUPPORTED, "load: device " + dev + ": no CUDA device visible to libtorch");
    if (flags & ~(CIB_LT_CUDA_GRAPHS | CIB_LT_BLOCKING_WAIT)) throw Failure(CIB_LT_BAD_ARG, "load: unknown flags " + std::to_string(flags));
    const bool cuda_graphs = flags & CIB_LT_CUDA_GRAPHS, blocking = flags & CIB_LT_BLOCKING_WAIT;
    if (cuda_graphs && !m->cuda()) throw Failure(CIB_LT_UNSUPPORTED, "load: cuda_graphs=on needs a cuda device");
    if (blocking && !m->cuda()) throw Failure(CIB_LT_UNSUPPORTED, "load: wait=block needs a cuda device");
    if (threads > 0) at::set_num_threads(threads);

    // The package must come from the same torch as the runtime: AOTI's C shim is only stable within a version.
    std::string pkg(package);
    std::unordered_map<std::string, std::string> meta;
    try {
      meta = torch::inductor::AOTIModelPackageLoader::load_metadata_from_package(pkg, "prefill");
    } catch (const c10::Error &e) {
      throw Failure(CIB_LT_FAILED, "load: read metadata of " + pkg + ": " + e.what_without_backtrace());
    }
    std::string rt = runtime_version();
    if (meta["torch_version"] != rt)
      throw Failure(CIB_LT_UNSUPPORTED, "load: package " + pkg + " was exported with torch " +
                                            quote(meta["torch_version"]) + " but the runtime libtorch is " + quote(rt) +
                                            " (export it again with this torch)");
    std::string want = m->cuda() ? "cuda" : "cpu";
    if (meta["AOTI_DEVICE_KEY"] != want)
      throw Failure(CIB_LT_BAD_ARG, "load: package " + pkg + " is for " + quote(meta["AOTI_DEVICE_KEY"]) + ", device is " + dev);
    // The package serves one batch size and any cache length up to its max_seq (a dynamic dimension).
    int64_t limit = 0;
    try {
      limit = std::stoll(meta["max_seq"]);
    } catch (const std::exception &) {
      throw Failure(CIB_LT_BAD_ARG, "load: package " + pkg + " has no readable max_seq (" + quote(meta["max_seq"]) + ")");
    }
    if (meta["batch"] != std::to_string(batch) || max_seq > limit)
      throw Failure(CIB_LT_BAD_ARG, "load: package " + pkg + " has batch " + meta["batch"] + ", caches up to " + meta["max_seq"] +
                                        " positions; want batch " + std::to_string(batch) + ", " + std::to_string(max_seq));

    int64_t t_ctx = now_ns();
#ifdef CIB_LT_CUDA
    std::unique_ptr<c10::cuda::CUDAGuard> dev_guard;
    if (m->cuda()) {
      dev_guard = std::make_unique<c10::cuda::CUDAGuard>(m->device);
      at::zeros({1}, at::TensorOptions().device(m->device));  // context init
      c10::cuda::device_synchronize();
      m->stream = std::make_unique<c10::cuda::CUDAStream>(c10::cuda::getStreamFromPool(false, m->device.index()));
      m->event_flags = cudaEventDefault | (blocking ? cudaEventBlockingSync : 0);
      m->start = std::make_unique<at::cuda::CUDAEvent>(cudaEventDefault);
    }
#endif
    t_ctx = now_ns() - t_ctx;
    c10::DeviceIndex idx = m->cuda() ? m->device.index() : -1;
    // run_single_threaded: no container locking around run, which is what CUDA graph capture needs.
    int64_t t_load = now_ns();
    m->prefill = std::make_unique<torch::inductor::AOTIModelPackageLoader>(pkg, "prefill", true, 1, idx);
    int64_t t_prefill = now_ns() - t_load;
    int64_t t_dec = now_ns();
    m->decode = std::make_unique<torch::inductor::AOTIModelPackageLoader>(pkg, "decode", true, 1, idx);
    std::unordered_map<std::string, at::Tensor> shared;
    int64_t t_wdev = 0;
    bool weights_shared = false;
    if (weights != nullptr && *weights != 0) {
      // Both models were exported without weights: they use the weights file's tensors (user-managed, no copy).
      t_dec = now_ns() - t_dec;
      if (meta["external_weights"] != "1")
        throw Failure(CIB_LT_BAD_ARG, "load: package " + pkg + " carries its weights; a weights file was given too");
      m->weights = load_weights(weights, weights_index ? weights_index : "", m->device, &weights_shared);
      if (!weights_shared) t_wdev = m->weights->to_device_ns;
      use_weights(*m->prefill, *m->weights, weights, "prefill");
      use_weights(*m->decode, *m->weights, weights, "decode");
    } else {
    if (meta["external_weights"] == "1")
      throw Failure(CIB_LT_BAD_ARG, "load: package " + pkg + " was exported without weights: it needs its weights file");
    // The decode model was exported without weights: it uses the prefill model's tensors (user-managed, no copy).
    auto runner = m->prefill->get_runner();
    auto consts = runner->extract_constants_map(false);
    auto names = runner->getConstantNamesToOriginalFQNs();
    std::unordered_map<std::string, at::Tensor> by_fqn;
    for (auto &kv : consts) {
      auto it = names.find(kv.first);
      by_fqn[it == names.end() ? kv.first : it->second] = kv.second;
    }
    for (const auto &fqn : m->decode->get_constant_fqns()) {
      auto it = by_fqn.find(fqn);
      if (it == by_fqn.end()) throw Failure(CIB_LT_FAILED, "load: decode constant " + fqn + " not in the prefill model");
      shared[fqn] = it->second;
    }
    m->decode->load_constants(shared, false, true, true);
    t_dec = now_ns() - t_dec;
    }

    int layers = std::stoi(meta["layers"]), kv_heads = std::stoi(meta["kv_heads"]), head_dim = std::stoi(meta["head_dim"]);
    auto dt = meta["dtype"] == "bf16" ? at::kBFloat16 : meta["dtype"] == "f16" ? at::kHalf : at::kFloat;
    auto opts = at::TensorOptions().device(m->device);
    for (int i = 0; i < 2 * layers; i++) m->caches.push_back(at::zeros({batch, kv_heads, max_seq, head_dim}, opts.dtype(dt)));
    m->tok = at::zeros({batch, 1}, opts.dtype(at::kLong));
    m->pos = at::zeros({1}, opts.dtype(at::kLong));
    m->decode_in = {m->tok, m->pos};
    m->decode_in.insert(m->decode_in.end(), m->caches.begin(), m->caches.end());

    // Warm up both models (kernel loads, allocator) and capture the decode step. Cache contents are garbage
    // afterwards; prefill overwrites what decode reads.
    int64_t t_warm = now_ns();
    std::string graph_setting = "off";
    {
#ifdef CIB_LT_CUDA
      std::unique_ptr<c10::cuda::CUDAStreamGuard> sg;
      if (m->cuda()) sg = std::make_unique<c10::cuda::CUDAStreamGuard>(*m->stream);
#endif
      std::vector<at::Tensor> pin = {at::zeros({batch, 2}, opts.dtype(at::kLong))};
      pin.insert(pin.end(), m->caches.begin(), m->caches.end());
      m->prefill->run(pin, m->stream_handle());
      for (int i = 0; i < 3; i++) {
        m->pos.fill_(0);
        m->decode->run(m->decode_in, m->stream_handle());
      }
#ifdef CIB_LT_CUDA
      if (m->cuda()) {
        m->stream->synchronize();
        if (cuda_graphs) {
          m->pos.fill_(0);
          m->stream->synchronize();
          try {
            auto g = std::make_unique<at::cuda::CUDAGraph>();
            g->capture_begin();
            m->decode->run(m->decode_in, m->stream_handle());
            g->capture_end();
            m->pos.fill_(0);
            g->replay();
            m->stream->synchronize();
            m->graph = std::move(g);
          } catch (const c10::Error &e) {
            throw Failure(CIB_LT_FAILED, std::string("load: CUDA graph capture of the decode model failed (cuda_graphs=off runs without): ") +
                                             e.what_without_backtrace());
          }
          graph_setting = "one at::cuda::CUDAGraph of the decode model's run, replayed per token";
        }
      }
#endif
    }
    t_warm = now_ns() - t_warm;

    std::ostringstream o;
    o << "{\"context_init_ns\":" << t_ctx << ",\"prefill_load_ns\":" << t_prefill << ",\"decode_load_ns\":" << t_dec
      << ",\"warmup_ns\":" << t_warm << ",\"total_ns\":" << (now_ns() - t0) << ",\"libtorch\":" << quote(rt)
      << ",\"cuda_graph\":" << quote(graph_setting)
      << ",\"wait\":" << quote(!m->cuda() ? "none (cpu: every op has finished when it returns)"
                               : blocking ? "block (cudaEventBlockingSync: the host thread sleeps until the token is on the host)"
                                          : "spin (cudaEventDefault: the host thread polls until the token is on the host)")
      << ",\"threads\":" << at::get_num_threads()
      << ",\"shared_constants\":" << shared.size() << ",\"weights_to_device_ns\":" << t_wdev
      << ",\"weights_bytes\":" << (m->weights ? m->weights->bytes : 0) << ",\"weights_shared\":" << (weights_shared ? "true" : "false")
      << ",\"device_name\":";
#ifdef CIB_LT_CUDA
    if (m->cuda()) {
      cudaDeviceProp p;
      if (cudaGetDeviceProperties(&p, m->device.index()) == cudaSuccess)
        o << quote(p.name);
      else
        o << "\"cuda\"";
    } else
#endif
      o << "\"cpu\"";
    o << "}";
    std::string s = o.str();
    if (s.size() + 1 > info_len) throw Failure(CIB_LT_BAD_ARG, "load: info buffer too small");
    put(info, info_len, s);
    *out = m.release();
  });
}

extern "C" int32_t cib_lt_generate(cib_lt_model *m, const int64_t *prompt, int32_t n_prompt, int32_t n_new,
                                   int64_t *ids, int64_t *host_ns, int64_t *device_ns, int64_t *peak_alloc, char *err,
                                   size_t err_len) {
  return guard(err, err_len, [&] {
    int64_t t0 = now_ns();
    if (m == nullptr || prompt == nullptr || ids == nullptr || host_ns == nullptr)
      throw Failure(CIB_LT_BAD_ARG, "generate: null argument");
    if (n_prompt < 1 || n_new < 1) throw Failure(CIB_LT_BAD_ARG, "generate: empty prompt or n_new < 1");
    if (n_prompt + n_new > m->max_seq)
      throw Failure(CIB_LT_UNSUPPORTED, "generate: prompt " + std::to_string(n_prompt) + " + " + std::to_string(n_new) +
                                            " new tokens > static cache " + std::to_string(m->max_seq));
    m->ensure(n_new);
    const int32_t b = m->batch;
    auto opts = at::TensorOptions().device(m->device).dtype(at::kLong);
    bool cuda = m->cuda();
    // On cuda the host queues step i+1 before waiting for token i (one step of lookahead): the decode step reads
    // its input on the device, so the device never idles while the host stamps a token. On cpu every op has
    // finished when it returns, so each token is stamped right after its step.
    int lag = cuda ? 1 : 0;
    auto flat = m->tok.view({-1});
#ifdef CIB_LT_CUDA
    std::unique_ptr<c10::cuda::CUDAGuard> dg;
    std::unique_ptr<c10::cuda::CUDAStreamGuard> sg;
    if (cuda) {
      dg = std::make_unique<c10::cuda::CUDAGuard>(m->device);
      m->stream->synchronize();
      c10::cuda::CUDACachingAllocator::resetPeakStats(m->device.index());
      sg = std::make_unique<c10::cuda::CUDAStreamGuard>(*m->stream);
      m->start->record(*m->stream);
    }
#endif
    auto fence = [&](int j) {
#ifdef CIB_LT_CUDA
      if (cuda) m->fences[j].record(*m->stream);
#endif
      (void)j;
    };
    auto emit = [&](int j) {
#ifdef CIB_LT_CUDA
      if (cuda) m->fences[j].synchronize();
#endif
      host_ns[j] = now_ns() - t0;
    };

    std::vector<int64_t> rows(static_cast<size_t>(b) * n_prompt);
    for (int32_t r = 0; r < b; r++) std::memcpy(&rows[static_cast<size_t>(r) * n_prompt], prompt, sizeof(int64_t) * n_prompt);
    auto host_ids = at::from_blob(rows.data(), {b, n_prompt}, at::TensorOptions().dtype(at::kLong));
    if (n_prompt == 1) {
      // A one-token prompt is one decode step at position 0 (the prefill model's dynamic length starts at 2).
      m->tok.copy_(host_ids);
      m->pos.fill_(0);
      m->step();
    } else {
      std::vector<at::Tensor> in = {cuda ? host_ids.to(opts, /*non_blocking=*/false) : host_ids};
      in.insert(in.end(), m->caches.begin(), m->caches.end());
      auto out = m->prefill->run(in, m->stream_handle());
      m->tok.copy_(out[0].view({b, 1}));
      m->pos.fill_(n_prompt);
    }
    m->ring[0].copy_(flat, /*non_blocking=*/cuda);
    fence(0);
    if (!lag) emit(0);
    for (int32_t i = 1; i < n_new; i++) {
      m->step();
      m->ring[i].copy_(flat, /*non_blocking=*/cuda);
      fence(i);
      emit(i - lag);
    }
    if (lag) emit(n_new - 1);
    std::memcpy(ids, m->ring.data_ptr<int64_t>(), sizeof(int64_t) * static_cast<size_t>(n_new) * b);
    if (peak_alloc) *peak_alloc = 0;
#ifdef CIB_LT_CUDA
    if (cuda) {
      if (device_ns)
        for (int32_t j = 0; j < n_new; j++)
          device_ns[j] = static_cast<int64_t>(m->start->elapsed_time(m->fences[j]) * 1e6 + 0.5);
      if (peak_alloc) {
        auto st = c10::cuda::CUDACachingAllocator::getDeviceStats(m->device.index());
        *peak_alloc = st.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
      }
    }
#endif
  });
}

extern "C" void cib_lt_free(cib_lt_model *m) {
  char err[256];
  guard(err, sizeof err, [&] { delete m; });
}
