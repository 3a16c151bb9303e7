"""kernels.py: what Inductor's Triton kernels settled on, for the two engines that compile the Llama in llama.py
(pytorch compiled, at load; libtorch, at export): read after compilation, reported with the load, so runs whose
speed or greedy outputs differ can be told apart by their kernels' launch configurations."""

import json


def code_modules():
    """code_modules is the ids of the generated modules Inductor has loaded so far in this process (PyCodeCache), a
    mark to tell which of them a later compilation loaded (kernel_configs' only)."""
    try:
        from torch._inductor.codecache import PyCodeCache

        return {id(m) for m in list(PyCodeCache.modules)}
    except Exception:  # Inductor internals: a mark is for a report, never a reason to fail a load
        return set()


def kernel_configs(skip=(), only=None, prefix=""):
    """kernel_configs is a JSON object: every Triton kernel Inductor loaded in this process (its generated modules in
    PyCodeCache) and the launch configuration it settled on after autotuning and coordinate-descent tuning (block
    sizes, warps, stages). Runs of one model whose greedy outputs differ between launches can then be told apart:
    the same map in every launch means the tuning is not the cause. Read after warm-up and capture, when each
    kernel holds the one launcher it kept; a kernel that still holds several says how many. skip: modules to leave
    out (those loaded before a compilation, to report only its kernels: kernel names repeat across graphs); only: the
    module ids (code_modules marks) to report, none other; prefix: put before each kernel name, to tell the graphs
    of one process apart (each decode session's graph numbers its kernels from 0)."""
    out = {}
    for kname, obj in triton_kernels(skip, only):
        launchers = obj.launchers
        c = launchers[0].config
        parts = _parts(c.kwargs, c.num_warps, c.num_stages)
        if len(launchers) > 1:
            parts.append(f"launchers={len(launchers)}")
        out[prefix + kname] = ",".join(parts)
    return json.dumps(out, sort_keys=True)


def tuning_cache(marks):
    """tuning_cache is a JSON object saying where each Triton kernel of a compilation got the launch configuration it
    runs with: "hit" counts the kernels whose module load found a tuning in Inductor's autotune cache (a .best_config
    file keyed by the kernel's source, which an earlier process saved) and kept it; "retuned" names the hits that run
    another configuration all the same (Inductor tuned them again in this process); "tuned" names the misses (tuned
    here); "other" counts the rest by Inductor's state (one candidate config, caching disabled; "no autotune cache"
    where the cache was off, as tuning=per-process has it). On the 8B
    (2026-12-03) a launch after its own prepare still ran 8-178 coordinate-descent benchmarks and settled on other
    configurations than the prepare's: this names the kernels, and says whether the cache missed or a hit was tuned
    again. marks: (prefix, module ids) per graph, e.g. one per decode session, as kernel_configs' prefix and only."""
    from torch._inductor.runtime.runtime_utils import triton_config_to_hashable

    out = {"hit": 0, "retuned": [], "tuned": [], "other": {}}
    for prefix, ids in marks:
        for kname, obj in triton_kernels(only=ids):
            info = getattr(obj, "autotune_cache_info", None) or {}
            state = info.get("autotune_cache_state", "no autotune cache")
            if state == "hit":
                if tuple(map(tuple, info.get("best_config", ()))) == triton_config_to_hashable(obj.launchers[0].config):
                    out["hit"] += 1
                else:
                    out["retuned"].append(prefix + kname)
            elif state == "miss":
                out["tuned"].append(prefix + kname)
            else:
                out["other"][state] = out["other"].get(state, 0) + 1
    out["retuned"].sort()
    out["tuned"].sort()
    return json.dumps(out, sort_keys=True)


def triton_kernels(skip=(), only=None):
    """triton_kernels yields (name, autotuner) for each Triton kernel in Inductor's loaded modules that holds a launcher,
    leaving out the modules in skip and, with only, those whose ids are not in it."""
    from torch._inductor.codecache import PyCodeCache

    skipped = {id(m) for m in skip}
    for mod in list(PyCodeCache.modules):
        if id(mod) in skipped or (only is not None and id(mod) not in only):
            continue
        for name, obj in list(vars(mod).items()):
            if not getattr(obj, "launchers", None):
                continue
            yield getattr(getattr(obj, "fn", None), "__name__", None) or name, obj


def inductor_counters():
    """inductor_counters is Inductor's own count of this process's cache lookups and tuning work (a JSON object):
    FX graph cache hits, misses and bypasses, coordinate-descent benchmark runs (coordesc_tuning_bench: 0 when every
    kernel took an earlier process's tuning), Triton bundle loads. Read after compilation and warm-up."""
    from torch._dynamo.utils import counters

    keep = ("fxgraph_cache", "coordesc", "triton_bundler", "autotune")
    return json.dumps({k: v for k, v in counters["inductor"].items() if k.startswith(keep)}, sort_keys=True)


def _parts(kwargs, num_warps, num_stages):
    return [f"{k}={v}" for k, v in sorted(kwargs.items())] + [f"num_warps={num_warps}", f"num_stages={num_stages}"]


def aoti_mark():
    """aoti_mark notes the Triton kernels AOTInductor has compiled so far in this process, for aoti_kernel_configs."""
    from torch._inductor.codecache import CudaKernelParamCache

    return {k: id(v) for k, v in CudaKernelParamCache.cache.items()}


def aoti_kernel_configs(since=None):
    """aoti_kernel_configs is kernel_configs for AOTInductor (libtorch's export), in the same format: AOTInductor
    tunes its Triton kernels at compile time in a scope of its own (none stays in PyCodeCache) and records each kernel's
    chosen launcher in CudaKernelParamCache (what its C++ wrapper is generated from: the config's block sizes, warps,
    stages). since: an aoti_mark() taken before a compilation, to report only the kernels it compiled (or compiled
    again: names repeat across graphs, and a later compilation replaces the entry)."""
    from torch._inductor.codecache import CudaKernelParamCache

    since = since or {}
    out = {}
    for name, params in list(CudaKernelParamCache.cache.items()):
        if since.get(name) == id(params):
            continue
        c = dict(params.get("config") or {})
        num_warps, num_stages = c.pop("num_warps", None), c.pop("num_stages", None)
        for k in ("num_consumer_groups", "num_buffers_warp_spec"):  # warp-specialisation fields, 0 unless used
            if not c.get(k):
                c.pop(k, None)
        out[name] = ",".join(_parts(c, num_warps, num_stages))
    return json.dumps(out, sort_keys=True)

