"""worker.py: the Python side of the pytorch engine, driven by the Go binary over pipes.

Sub-protocol (JSON lines): the worker first writes {"ready": true, ...versions...}; then for each request line
on stdin ({"op": "load"|"generate"|"exit", ...}) it writes exactly one reply line: {"ok": true, ...} or
{"ok": false, "code": ..., "message": ..., "traceback": ...}. Logs go to stderr only: the protocol owns a
private copy of the original stdout, and fd 1 is pointed at stderr, so no stray print can corrupt it.

Token times are time.perf_counter_ns() offsets from the moment the generate line was read, taken right after
each token id is on the host.
"""

import os
import sys

_proto = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from importlib import metadata  # noqa: E402

import torch  # noqa: E402

import llama  # noqa: E402
from kernels import code_modules, inductor_counters, kernel_configs, tuning_cache  # noqa: E402


class BadRequest(Exception):
    """BadRequest marks a request the caller got wrong."""


# Ops that ran without a deterministic implementation while option deterministic=on asked for one (torch warns once
# per op with warn_only=True): collected so load's settings and the log name them.
NONDETERMINISTIC = []
_showwarning = warnings.showwarning


def _collect_warning(message, category, filename, lineno, file=None, line=None):
    text = str(message)
    if "does not have a deterministic implementation" in text:
        op = text.split(" does not have")[0].strip()
        if op not in NONDETERMINISTIC:
            NONDETERMINISTIC.append(op)
    _showwarning(message, category, filename, lineno, file, line)


warnings.showwarning = _collect_warning


def deterministic_mode(compiled):
    """deterministic_mode makes every op with a deterministic implementation use it (option deterministic=on): the
    diagnostic of issue 23's "greedy outputs differ between iterations" — if outputs agree with it on, the differences
    came from nondeterministic kernels, and NONDETERMINISTIC names the ops that had no deterministic one."""
    # cuBLAS reproducibility needs a fixed workspace configuration, read when its handle is created (the first matmul,
    # after this point).
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    what = ("torch.use_deterministic_algorithms(True, warn_only=True), CUBLAS_WORKSPACE_CONFIG="
            + os.environ["CUBLAS_WORKSPACE_CONFIG"] + ", cudnn.deterministic")
    if compiled:
        # Inductor's deterministic mode: no on-device benchmarking where the choice changes numerics (tuned reduction
        # splits, autotuned configs), so every process compiles the same kernels.
        torch._inductor.config.deterministic = True
        what += ", torch._inductor.config.deterministic"
    return what


def log(*a):
    print("pytorch-worker:", *a, file=sys.stderr, flush=True)


def reply(obj):
    _proto.write(json.dumps(obj, separators=(",", ":")) + "\n")
    _proto.flush()


def versions():
    v = {"torch": torch.__version__, "python": platform.python_version(), "cuda": torch.version.cuda or "none"}
    for pkg in ("transformers", "safetensors", "triton"):
        try:
            v[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return v


class Worker:
    def __init__(self):
        self.impl = None
        self.device = None

    def sync(self):
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def load(self, req):
        t = time.perf_counter_ns()
        opts = req.get("options") or {}
        mode = opts.get("mode", "eager")
        dtype = llama.DTYPES[req["dtype"]]
        dev = torch.device("cuda" if req["device"] == "cuda" else req["device"])
        if dev.type == "cuda":
            if dev.index is None:
                dev = torch.device("cuda", 0)
            if not torch.cuda.is_available():
                raise llama.Unsupported("device cuda: torch.cuda.is_available() is false")
            torch.cuda.set_device(dev)
            torch.cuda.init()
            torch.zeros(1, device=dev)
        self.device = dev
        torch.manual_seed(int(req.get("seed", 0)) & 0xFFFFFFFFFFFF)
        if req.get("threads"):
            torch.set_num_threads(int(req["threads"]))
        torch.set_grad_enabled(False)
        det = opts.get("deterministic", "off")
        if det not in ("off", "on"):
            raise BadRequest(f"option deterministic={det!r}: want off or on")
        det_what = deterministic_mode(mode == "compiled") if det == "on" else None
        if mode == "eager":
            import eager  # noqa: F401  (imports transformers: runtime start-up, so it counts as context init)
        self.sync()
        ctx_ns = time.perf_counter_ns() - t
        cases = req["cases"]
        settings = {"mode": mode, "threads": str(torch.get_num_threads()),
                    "float32_matmul_precision": torch.get_float32_matmul_precision()}
        compile_ns = 0
        if mode == "eager":
            for k in ("compile", "prefill", "cuda_graph", "lookahead", "wait", "tuning", "refine", "attention", "mlp", "fusion", "prefill_attention"):
                if k in opts:
                    raise BadRequest(f"option {k} applies to mode=compiled only")
            import eager
            self.impl = eager.Eager(req["model"], dev, dtype, self.sync)
            host_ns, dev_ns = self.impl.host_ns, self.impl.device_ns
            params, max_pos, vocab = self.impl.params, self.impl.max_pos, self.impl.vocab
            self.check_cases(cases, vocab, max_pos)
            settings.update(self.impl.settings())
        elif mode == "compiled":
            # On CPU Inductor compiles C++ with the host compiler, minutes on a small CI machine: default off.
            comp = opts.get("compile", "inductor" if dev.type == "cuda" else "none")
            if comp not in llama.COMPILE_SETTINGS:
                raise BadRequest(f"option compile={comp!r}: want one of {', '.join(llama.COMPILE_SETTINGS)}")
            prefill = opts.get("prefill", "eager")
            if prefill not in ("eager", "compiled"):
                raise BadRequest(f"option prefill={prefill!r}: want eager or compiled")
            if prefill == "compiled" and comp == "none":
                raise BadRequest("option prefill=compiled needs compile other than none")
            graph_opt = opts.get("cuda_graph", "on" if dev.type == "cuda" else "off")
            if graph_opt not in ("on", "off"):
                raise BadRequest(f"option cuda_graph={graph_opt!r}: want on or off")
            graph = graph_opt == "on"
            lookahead = opts.get("lookahead", "1" if dev.type == "cuda" else "0")
            if lookahead not in ("0", "1"):
                raise BadRequest(f"option lookahead={lookahead!r}: want 0 or 1")
            if graph and dev.type != "cuda":
                raise llama.Unsupported("option cuda_graph=on needs a cuda device")
            wait = opts.get("wait", "spin")
            if wait not in ("spin", "block"):
                raise BadRequest(f"option wait={wait!r}: want spin or block")
            if wait == "block" and dev.type != "cuda":
                raise llama.Unsupported("option wait=block needs a cuda device")
            tuning = opts.get("tuning", "cached")
            if tuning not in llama.TUNING:
                raise BadRequest(f"option tuning={tuning!r}: want one of {', '.join(llama.TUNING)}")
            refine = opts.get("refine", "off")
            if refine not in llama.REFINE:
                raise BadRequest(f"option refine={refine!r}: want one of {', '.join(llama.REFINE)}")
            if refine == "in-graph" and not graph:
                raise llama.Unsupported("option refine=in-graph times the decode step's CUDA graph: it needs cuda_graph=on (a cuda device)")
            if refine == "in-graph" and comp in ("none", "aot_eager", "inductor-cublas"):
                raise BadRequest(f"option refine=in-graph re-chooses generated Triton GEMV kernels: compile={comp} makes none")
            # torch 2.11 bundles the Triton kernels into its FX graph cache; a process that hits that cache restores
            # them as pickled before coordinate-descent tuning ran and does not apply the .best_config the tuning
            # saved (CachingAutotuner.recheck_autotune_cache acts only on kernels with several configs), so it tunes
            # again: on the H200 (2026-12-02) TPOT spread 13% over launches. llama.set_tuning says what cached does.
            own_cache = llama.set_tuning(tuning, refine)
            if own_cache is not None:
                settings["inductor_cache"] = ("refine=in-graph keeps its own Inductor cache, apart from refine=off's (same "
                                              "kernel sources, other tunings): " + own_cache)
            attention = opts.get("attention", "sdpa")
            if attention not in llama.ATTENTION:
                raise BadRequest(f"option attention={attention!r}: want one of {', '.join(llama.ATTENTION)}")
            mlp = opts.get("mlp", "fused")
            if mlp not in llama.MLP:
                raise BadRequest(f"option mlp={mlp!r}: want one of {', '.join(llama.MLP)}")
            fusion = opts.get("fusion", "gpt-fast")
            if fusion not in llama.FUSION:
                raise BadRequest(f"option fusion={fusion!r}: want one of {', '.join(llama.FUSION)}")
            prefill_attention = opts.get("prefill_attention", "masked")
            if prefill_attention not in llama.PREFILL_ATTENTION:
                raise BadRequest(f"option prefill_attention={prefill_attention!r}: want one of {', '.join(llama.PREFILL_ATTENTION)}")
            t = time.perf_counter_ns()
            cfg, host, params = llama.load_host(req["model"], dtype)
            host_ns = time.perf_counter_ns() - t
            self.check_cases(cases, cfg.vocab, cfg.max_pos)
            need = max(len(c["prompt"]) + c["max_new"] for c in cases)
            max_seq = llama.cache_length(need, attention)
            t = time.perf_counter_ns()
            model = llama.build(cfg, host, dev, max_seq)
            model.set_decode_attention(attention)
            model.set_mlp(mlp)
            model.set_fusion(fusion)
            model.set_prefill_attention(prefill_attention)
            del host
            self.sync()
            dev_ns = time.perf_counter_ns() - t
            dec_opts = llama.compile_options(dev, comp)
            pre_opts = llama.compile_options(dev, comp) if prefill == "compiled" and comp != "none" else None
            t = time.perf_counter_ns()
            self.impl = llama.Decoder(model, dev, dec_opts, pre_opts, graph, device_events=dev.type == "cuda",
                                      lookahead=int(lookahead), blocking_wait=wait == "block")
            self.impl.refine = refine
            # One session per batch size and cache length (each case's own, as gpt-fast sizes the cache per request):
            # cases that share both share a session. One compiled decode graph per session and, with compiled prefill,
            # one per (session, prompt length): raise Dynamo's recompile limit so none silently falls back to eager.
            by_session = {}
            for c in cases:
                n, mn = len(c["prompt"]), c["max_new"]
                key = self.impl.session_key(c["batch"], n + mn)
                lens, max_new, need = by_session.get(key, ([], 0, 0))
                by_session[key] = (lens + [n], max(max_new, mn), max(need, n + mn))
            graphs = len(by_session) + sum(len(set(v[0])) for v in by_session.values())
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, graphs + 4)
            # Which generated modules each session's compilation loaded: its kernels are numbered from 0 in each graph,
            # so kernel_configs reports them per session ("b1-s384/triton_…_9"), not one name over another's.
            marks = []
            for (b, length), (lens, max_new, need) in sorted(by_session.items()):
                before = code_modules() if dev.type == "cuda" else set()
                try:
                    self.impl.prepare(b, lens, max_new, need)
                except torch.OutOfMemoryError:
                    raise
                except Exception as e:
                    raise RuntimeError(f"compile/capture of the decode step (batch {b}, cache {length}) failed: {type(e).__name__}: {e}") from e
                if dev.type == "cuda":
                    marks.append((f"b{b}-s{length}/", code_modules() - before))
            self.sync()
            compile_ns = time.perf_counter_ns() - t
            if dev.type == "cuda" and dec_opts is not None and dec_opts.get("backend") is None:
                settings["tuning"] = (
                    "cached: a process reuses the coordinate-descent results an earlier one saved in Inductor's cache "
                    "(bundle_triton_into_fx_graph_cache off; triton.Config keeps Inductor's coordinate-descent mark through "
                    "the compile workers' pickling, which Triton 3.6 drops, so those kernels are not tuned again); the first "
                    "process on a cold cache tunes" if tuning == "cached" else
                    "per-process: each process tunes every kernel itself (Inductor's autotune cache off: it reads no earlier "
                    "process's tuning and leaves none for a later one)")
                settings["inductor_counters"] = inductor_counters()
                if tuning == "cached":
                    # Read by the runner's report: launches replay one tuning draw (analysis.SettingSharedTuning).
                    settings["shared_tuning"] = ("Inductor's Triton kernel tuning, made by the first process on this compile cache "
                                                 "and read by every later one (tuning=cached)")
                try:
                    configs = {}
                    for prefix, ids in marks:
                        configs.update(json.loads(kernel_configs(only=ids, prefix=prefix)))
                    settings["kernel_configs"] = json.dumps(configs, sort_keys=True)
                except Exception as e:  # introspection of Inductor internals: report it, never fail the load
                    settings["kernel_configs_error"] = f"{type(e).__name__}: {e}"
                try:
                    settings["tuning_cache"] = tuning_cache(marks)
                except Exception as e:
                    settings["tuning_cache_error"] = f"{type(e).__name__}: {e}"
                if refine == "in-graph":
                    settings["refine"] = ("in-graph: after coordinate descent, each GEMV kernel's XBLOCK and warps re-chosen by timing "
                                          "the decode step's CUDA graph (Session.refine_in_graph), saved to the autotune cache")
                    # The sessions (decode graphs) it ran in: only where this process tuned (a replayed tuning is not refined again).
                    settings["refine_ran"] = ",".join(f"b{b}-s{n}" for b, n in sorted(self.impl.refined))
                    settings["refined_kernels"] = json.dumps(
                        {f"b{b}-s{n}/{k}": v for (b, n), ch in sorted(self.impl.refined.items()) for k, v in sorted(ch.items())}, sort_keys=True)
            settings.update({
                "implementation": "own gpt-fast-style Llama (engines/torchllama/llama.py, shared with the libtorch engine)",
                "kv_cache": ("static, written in place (index_put_), sized per request as gpt-fast does (prompt + new tokens, "
                             "rounded up): one session per batch size and cache length, here "
                             + ", ".join(f"batch {b}: {n} positions" for b, n in sorted(self.impl.sessions))),
                "attention": ("F.scaled_dot_product_attention, bool causal mask over the static cache, GQA by query-head grouping"
                              if attention == "sdpa" else
                              "decode step: FlexAttention (flex_attention, native GQA, causal cut as a score_mod on the device-side "
                              "position) over the static cache; prefill: F.scaled_dot_product_attention with a bool causal mask"
                              if attention == "flex" else
                              "decode step: plain ops over the static cache (q·K as a broadcast multiply and sum, causal cut and "
                              "softmax in fp32, the weighted sum of V; GQA by broadcasting each KV head over its query heads); "
                              "prefill: F.scaled_dot_product_attention with a bool causal mask"),
                "prefill_attention": ("masked: the prompt over the whole static cache under the bool causal mask (gpt-fast's)"
                                      if prefill_attention == "masked" else
                                      "causal: the prompt over its own keys and values, is_causal=True, no mask (K/V repeated per query head)"),
                "fused_weights": "qkv, gate+up",
                "fusion": ("gpt-fast: a bool causal mask (made additive by SDPA at every layer), K and V written by two index_puts"
                           if fusion == "gpt-fast" else
                           "more: the additive mask built once per step, K and V written by one index_put into a stacked cache"),
                "mlp": ("fused: one matmul over the gate+up weights, then silu(gate) * up" if mlp == "fused" else
                        "split: gate and up as two matmuls over views of the fused weights (gpt-fast's form)"),
                "compile_decode": "none (plain torch ops)" if dec_opts is None else f"torch.compile({json.dumps(dec_opts, sort_keys=True)})",
                "prefill": "eager (plain torch ops)" if pre_opts is None else f"torch.compile({json.dumps(pre_opts, sort_keys=True)}), one graph per prompt length",
                "cuda_graph": "one manually captured CUDA graph per decode step (torch.cuda.graph), per batch size" if graph else "off",
                "compile_at": "load: compilation, warm-up steps and graph capture are in compile_ns",
                "token_timing": ("each token copied to (pinned) host memory behind a fence (CUDA event); stamped (perf_counter_ns) when the host "
                                 "has waited on that event; the next step is queued first (1 step lookahead), so the GPU never waits for the host")
                                if self.impl.lookahead else "each token copied to host memory and stamped (perf_counter_ns) right after its step",
                "device_timing": "the same CUDA events, from an event recorded at the start of the iteration" if dev.type == "cuda" else "none",
                "wait": ("none (cpu: every op has finished when it returns)" if dev.type != "cuda" else
                         "block (cudaEventBlockingSync: the host thread sleeps until the token is on the host)" if wait == "block" else
                         "spin (the host thread polls the event until the token is on the host)"),
                "decoding": "greedy argmax on device, no EOS check",
            })
        else:
            raise BadRequest(f"option mode={mode!r}: want eager or compiled")
        if det_what is not None:
            settings["deterministic"] = det_what
            if NONDETERMINISTIC:  # seen so far (compiled mode's warm-up and capture run at load); later ones go to the log
                settings["nondeterministic_ops"] = ", ".join(NONDETERMINISTIC)
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
        return {"context_init_ns": ctx_ns, "weights_to_host_ns": host_ns, "weights_to_device_ns": dev_ns,
                "compile_ns": compile_ns, "device_name": name, "dtype": req["dtype"], "params": params,
                "settings": settings}

    @staticmethod
    def check_cases(cases, vocab, max_pos):
        for i, c in enumerate(cases):
            bad = [t for t in c["prompt"] if t >= vocab]
            if bad:
                raise BadRequest(f"cases[{i}]: prompt token id {bad[0]} >= vocab size {vocab}")
            if len(c["prompt"]) + c["max_new"] > max_pos:
                raise llama.Unsupported(f"cases[{i}]: {len(c['prompt'])} prompt + {c['max_new']} new tokens > max_position_embeddings {max_pos}")

    def generate(self, req, t0):
        if self.impl is None:
            raise RuntimeError("generate before load")
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        seen = len(NONDETERMINISTIC)
        with torch.no_grad():
            steps, times, dev_ns = self.impl.generate(req["prompt"], req["batch"], req["max_new"], t0)
        if len(NONDETERMINISTIC) > seen:
            log("ran without a deterministic implementation (deterministic=on):", ", ".join(NONDETERMINISTIC[seen:]))
        out = {"steps": steps, "token_ns": times}
        if dev_ns is not None:
            out["device_token_ns"] = dev_ns
        if cuda:
            out["peak_alloc_bytes"] = torch.cuda.max_memory_allocated(self.device)
        return out


def classify(op, e):
    if isinstance(e, torch.OutOfMemoryError):
        return "oom"
    if isinstance(e, BadRequest):
        return "bad_request"
    if isinstance(e, llama.Unsupported):
        return "unsupported"
    return "load" if op == "load" else "runtime"


def main():
    reply({"ready": True, "versions": versions(), "cuda_available": torch.cuda.is_available(),
           "device_count": torch.cuda.device_count() if torch.cuda.is_available() else 0})
    w = Worker()
    for line in sys.stdin:
        t0 = time.perf_counter_ns()
        if not line.strip():
            continue
        op = "?"
        try:
            req = json.loads(line)
            op = req.get("op")
            if op == "load":
                reply({"ok": True, "loaded": w.load(req)})
            elif op == "generate":
                reply({"ok": True, **w.generate(req, t0)})
            elif op == "exit":
                reply({"ok": True})
                return
            else:
                raise BadRequest(f"unknown op {op!r}")
        except Exception as e:  # every failure becomes one reply line; the Go side decides what to do
            tb = traceback.format_exc()
            log(f"{op} failed:\n{tb}")
            reply({"ok": False, "code": classify(op, e), "message": f"{type(e).__name__}: {e}", "traceback": tb[-4000:]})


if __name__ == "__main__":
    main()
