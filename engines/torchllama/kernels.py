"""kernels.py: what Inductor's Triton kernels settled on, for the two engines that compile the Llama in llama.py
(pytorch compiled, at load; libtorch, at export): read after compilation, reported with the load, so runs whose
speed or greedy outputs differ can be told apart by their kernels' launch configurations."""

import json


def kernel_configs(skip=()):
    """kernel_configs is a JSON object: every Triton kernel Inductor loaded in this process (its generated modules in
    PyCodeCache) and the launch configuration it settled on after autotuning and coordinate-descent tuning (block
    sizes, warps, stages). Runs of one model whose greedy outputs differ between launches can then be told apart:
    the same map in every launch means the tuning is not the cause. Read after warm-up and capture, when each
    kernel holds the one launcher it kept; a kernel that still holds several says how many. skip: modules to leave
    out (those loaded before a compilation, to report only its kernels: kernel names repeat across graphs)."""
    from torch._inductor.codecache import PyCodeCache

    out = {}
    skipped = {id(m) for m in skip}
    for mod in list(PyCodeCache.modules):
        if id(mod) in skipped:
            continue
        for name, obj in list(vars(mod).items()):
            launchers = getattr(obj, "launchers", None)
            if not launchers:
                continue
            c = launchers[0].config
            parts = [f"{k}={v}" for k, v in sorted(c.kwargs.items())] + [f"num_warps={c.num_warps}", f"num_stages={c.num_stages}"]
            if len(launchers) > 1:
                parts.append(f"launchers={len(launchers)}")
            kname = getattr(getattr(obj, "fn", None), "__name__", None) or name
            out[kname] = ",".join(parts)
    return json.dumps(out, sort_keys=True)
