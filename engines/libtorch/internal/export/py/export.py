"""export.py: the libtorch engine's export step (Python, at model-preparation time, never in a timed process).

It builds the pytorch engine's static-cache Llama (llama.py from engines/torchllama, the module pytorch compiled
runs too) for one model directory, dtype, device and batch size, exports two
entry points with torch.export and compiles each with AOTInductor into one .pt2 package holding two models:

  prefill(ids [B, t], k0, v0, ...) -> next ids [B]     t dynamic in [2, S]; writes the KV cache in place
  decode(tok [B, 1], pos [1], k0, v0, ...) -> next [B]  writes the cache, tok (= next) and pos (+1) in place

The caches' length S ([B, kv_heads, S, head_dim]) is a dynamic dimension of both, up to --max-seq (the model's
max_position_embeddings): the bridge allocates the cache each request needs (its longest prompt + new tokens
rounded up to 64, as the pytorch engine's static cache), and one package serves every length.

so the decode step needs no host input (one CUDA graph can replay it). With --weights FILE (the engine's default)
neither model carries weights (aot_inductor.package_constants_in_so=False): they go to FILE once (safetensors,
tensors named by fqn), which every package of the model shares, and the bridge hands each model the tensors it names
(user-managed, no copy). Without it the weights are constants of the prefill model only and the bridge hands the
decode model the prefill model's tensors. Metadata (torch version, shapes, dtype)
travels in the package and the bridge checks it at load.

Usage: python export.py --model DIR --dtype f32 --device cpu --batch 1 --max-seq 64 --out PKG.pt2 [--key K] [--weights FILE]
Prints one JSON line on stdout: {"ok": true, "export_ns": ..., ...}. Logs on stderr.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

_out = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

import torch  # noqa: E402

import llama  # noqa: E402
from kernels import aoti_kernel_configs, aoti_mark, kernel_configs  # noqa: E402


class Prefill(torch.nn.Module):
    """Prefill runs the prompt through the model, filling the KV cache; returns the greedy next ids."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, ids, caches):
        pos = torch.arange(ids.shape[1], device=ids.device)
        return torch.argmax(self.m(ids, pos, list(zip(caches[0::2], caches[1::2]))), dim=-1)


class Decode(torch.nn.Module):
    """Decode is Session._step of llama.py: one token at the device-side position, written back in place."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, tok, pos, caches):
        nxt = torch.argmax(self.m(tok, pos, list(zip(caches[0::2], caches[1::2]))), dim=-1)
        tok.copy_(nxt.unsqueeze(1))
        pos.add_(1)
        return nxt


def inductor_options(device, meta):
    """inductor_options are the pytorch engine's compiled-mode settings (gpt-fast's on cuda), for AOTI."""
    opts = {"aot_inductor.package": True, "aot_inductor.metadata": meta}
    if device.type == "cuda":
        opts.update({"coordinate_descent_tuning": True, "triton.unique_kernel_names": True})
    return opts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--dtype", required=True, choices=sorted(llama.DTYPES))
    ap.add_argument("--device", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--max-seq", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--key", default="")
    ap.add_argument("--static-cache", action="store_true", help="the cache length is --max-seq exactly, not a dynamic dimension")
    ap.add_argument("--weights", default="", help="export both models without weights and write them here (safetensors, "
                    "tensors named by their fqn, shared by every package of this model, dtype and torch); without it the "
                    "prefill model carries them in its .so")
    ap.add_argument("--prefill-attention", default="masked", choices=list(llama.PREFILL_ATTENTION),
                    help="the prefill model's attention (llama.PREFILL_ATTENTION)")
    ap.add_argument("--weights-only", action="store_true", help="write only the --weights file (the package at --out exists, "
                    "e.g. carried from another machine of the same card and torch): torch.export names the tensors, no "
                    "AOTInductor compilation")
    a = ap.parse_args()
    if a.weights_only and not a.weights:
        raise ValueError("--weights-only needs --weights")
    t_all = time.perf_counter_ns()
    torch.set_grad_enabled(False)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        if dev.index is None:
            dev = torch.device("cuda", 0)
        torch.cuda.set_device(dev)
    dtype = llama.DTYPES[a.dtype]
    cfg, host, _ = llama.load_host(a.model, dtype)
    if a.max_seq > cfg.max_pos:
        raise llama.Unsupported(f"max_seq {a.max_seq} > max_position_embeddings {cfg.max_pos}")
    model = llama.build(cfg, host, dev, a.max_seq)
    model.set_prefill_attention(a.prefill_attention)
    del host
    # Example caches (the decode step's; the prefill's below); the exported models take any length in [2, max_seq].
    s_ex = a.max_seq if a.static_cache else min(128, a.max_seq)
    kw = dict(dtype=dtype, device=dev)
    caches = tuple(torch.zeros((a.batch, cfg.kv_heads, s_ex, cfg.head_dim), **kw) for _ in range(2 * cfg.layers))
    s_dim = torch.export.Dim("s", min=2, max=a.max_seq)
    cache_dims = tuple(None if a.static_cache else {2: s_dim} for _ in caches)
    meta = {
        "torch_version": torch.__version__, "dtype": a.dtype, "batch": str(a.batch), "max_seq": str(a.max_seq),
        "layers": str(cfg.layers), "kv_heads": str(cfg.kv_heads), "head_dim": str(cfg.head_dim),
        "vocab": str(cfg.vocab), "key": a.key, "external_weights": "1" if a.weights else "0",
        "prefill_attention": a.prefill_attention,
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.machine(),
    }
    t = time.perf_counter_ns()
    # The prefill's example is a long prompt over a long cache: AOTInductor tunes each Triton kernel once, at the
    # example's sizes, and runs that configuration at every size. On the H200 a prefill exported at 8 tokens over 128
    # positions took 116.5 ms for 2032 tokens (results/h200-2026-12-03-s13), one exported over a 2048-position cache
    # 37.5 ms (-s12). A configuration tuned on a large launch also serves a small one (fewer programs); the reverse
    # launches millions of tiny programs. The decode step keeps its 128-position example (its sizes do not grow with t).
    t_ex = max(2, min(1024, a.max_seq // 2))
    s_pre = a.max_seq if a.static_cache else min(a.max_seq, max(s_ex, 2 * t_ex))
    pre_caches = tuple(torch.zeros((a.batch, cfg.kv_heads, s_pre, cfg.head_dim), **kw) for _ in range(2 * cfg.layers))
    ids = torch.zeros((a.batch, t_ex), dtype=torch.long, device=dev)
    seq = torch.export.Dim("t", min=2, max=a.max_seq)
    # Deferred runtime asserts: the symbolic solver cannot prove some reshape guards (Min(hd, k*t) == hd) that
    # hold for every t >= 2; they become runtime checks instead of export errors.
    ep_pre = torch.export.export(Prefill(model), (ids, pre_caches), dynamic_shapes=({1: seq}, cache_dims),
                                 prefer_deferred_runtime_asserts_over_guards=True)
    tok = torch.zeros((a.batch, 1), dtype=torch.long, device=dev)
    pos = torch.zeros((1,), dtype=torch.long, device=dev)
    ep_dec = torch.export.export(Decode(model), (tok, pos, caches), dynamic_shapes=None if a.static_cache else (None, None, cache_dims),
                                 prefer_deferred_runtime_asserts_over_guards=True)
    export_ns = time.perf_counter_ns() - t
    weights_ns, weights_bytes = 0, 0
    if a.weights:
        # One weights file serves every package of this model (batch sizes, cache_len modes): the models carry none.
        t = time.perf_counter_ns()
        if not os.path.exists(a.weights):
            from safetensors.torch import save_file

            named = {}
            for ep in (ep_pre, ep_dec):
                for k, v in list(ep.state_dict.items()) + list(ep.constants.items()):
                    if isinstance(v, torch.Tensor) and k not in named:
                        # copy=True: a tied lm_head is the embedding's tensor, and safetensors stores no shared storage.
                        named[k] = v.detach().to("cpu", copy=True).contiguous()
            os.makedirs(os.path.dirname(os.path.abspath(a.weights)), exist_ok=True)
            fd, wtmp = tempfile.mkstemp(suffix=".weights.tmp", dir=os.path.dirname(os.path.abspath(a.weights)))
            os.close(fd)
            try:
                save_file(named, wtmp, metadata={"format": "pt", "key": a.key})
                os.replace(wtmp, a.weights)
            finally:
                if os.path.exists(wtmp):
                    os.unlink(wtmp)
            del named
        weights_ns, weights_bytes = time.perf_counter_ns() - t, os.path.getsize(a.weights)
    if a.weights_only:
        _out.write(json.dumps({
            "ok": True, "weights_only": True, "torch": torch.__version__, "total_ns": time.perf_counter_ns() - t_all,
            "export_ns": export_ns, "weights_ns": weights_ns, "weights_bytes": weights_bytes,
        }) + "\n")
        return
    t = time.perf_counter_ns()
    pre_opts = inductor_options(dev, dict(meta))
    if a.weights:
        pre_opts["aot_inductor.package_constants_in_so"] = False
    pre_files = torch._inductor.aot_compile(ep_pre.module(), (ids, pre_caches), options=pre_opts)
    del pre_caches
    pre_ns = time.perf_counter_ns() - t
    from torch._inductor.codecache import PyCodeCache

    before_decode = list(PyCodeCache.modules)  # kernel names repeat across graphs: report the decode model's alone
    try:
        aoti_before = aoti_mark()
    except Exception:  # Inductor internals; the configurations are a report, never a reason to fail the export
        aoti_before = None
    t = time.perf_counter_ns()
    dec_opts = inductor_options(dev, dict(meta))
    dec_opts["aot_inductor.package_constants_in_so"] = False
    dec_files = torch._inductor.aot_compile(ep_dec.module(), (tok, pos, caches), options=dec_opts)
    dec_ns = time.perf_counter_ns() - t
    # The launch configurations Inductor settled on for the decode model's Triton kernels (cuda), next to the package:
    # the engine reports them at every load, to set against pytorch compiled's (its kernel_configs setting).
    configs = None
    if dev.type == "cuda":
        try:
            # AOTInductor's compile-time tuning leaves its kernels out of PyCodeCache (torch 2.11: the H200 export of
            # 2026-12-02 found none there); its kernel parameter cache has them.
            configs = kernel_configs(skip=before_decode)
            if configs == "{}":
                configs = aoti_kernel_configs(since=aoti_before)
        except Exception as e:  # introspection of Inductor internals: report it, never fail the export
            configs = json.dumps({"error": f"{type(e).__name__}: {e}"})
    from torch._inductor.package import package_aoti

    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".pt2", dir=os.path.dirname(os.path.abspath(a.out)))
    os.close(fd)
    try:
        package_aoti(tmp, {"prefill": pre_files, "decode": dec_files})
        if configs is not None:
            with open(a.out + ".kernels.json", "w") as f:
                f.write(configs + "\n")
        os.replace(tmp, a.out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        # The package holds copies of everything aot_compile wrote; the large ones (the prefill .so carries the
        # weights: 2.2 GB for TinyLlama, 16 GB for Llama-3-8B) would double the export's disk need if kept in
        # Inductor's cache, which never reuses them for a package.
        for f in list(pre_files) + list(dec_files):
            if isinstance(f, str) and os.path.isfile(f) and os.path.getsize(f) > (256 << 20):
                os.unlink(f)
    _out.write(json.dumps({
        "ok": True, "torch": torch.__version__, "total_ns": time.perf_counter_ns() - t_all, "export_ns": export_ns,
        "aoti_prefill_ns": pre_ns, "aoti_decode_ns": dec_ns, "bytes": os.path.getsize(a.out),
        "weights_ns": weights_ns, "weights_bytes": weights_bytes,
        "inductor_options": {k: v for k, v in inductor_options(dev, {}).items() if k != "aot_inductor.metadata"},
    }) + "\n")


if __name__ == "__main__":
    try:
        main()
    except llama.Unsupported as e:
        _out.write(json.dumps({"ok": False, "code": "unsupported", "message": f"{e}"}) + "\n")
        sys.exit(2)
    except Exception as e:  # one line for the Go side; the traceback goes to stderr
        import traceback

        traceback.print_exc()
        _out.write(json.dumps({"ok": False, "code": "load", "message": f"{type(e).__name__}: {e}"}) + "\n")
        sys.exit(1)
