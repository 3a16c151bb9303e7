#!/usr/bin/env python3
"""bench.py: the pytorch engine's decode loop with no Go binary and no protocol in between.

It imports the very module the engine's worker runs (engines/torchllama/llama.py), so its tok/s is the
ceiling the engine should reach; the gap to the runner's figure is the adapter overhead.

    bench.py run --model DIR [--device cuda] [--dtype bf16] [--prompt 128] [--new 256] [--iters 5]
                 [--compile inductor|inductor-thorough|inductor-realize|inductor-pdl|max-autotune|inductor-cublas|aot_eager|none] [--tuning cached|per-process] [--refine off|in-graph]
                 [--attention sdpa|flex|math] [--mlp fused|split] [--fusion gpt-fast|more] [--inductor KEY=VALUE ...] [--cuda-graph on|off] [--lookahead 0|1] [--check [--eager]]
                 [--seed 1 --case p128-n256] [--per-iter] [--nvtx]
    bench.py run --dry        # the same code on CPU, on a tiny checkpoint written to a temp dir
    bench.py synth --out DIR [--seed 0]   # a tiny random HF Llama checkpoint (f32), for tests

--check (the GPU self-check) compares, before timing, the tokens of: the captured CUDA graph, the same step
without the graph, and (with --eager) transformers' generate; it prints how many leading tokens agree and
exits 1 if graph and non-graph disagree at all (they run the same kernels, so they must not).

--case NAME draws the runner's prompt ids for --seed and that case name (runner/internal/workload.Prompt), as
candle-bench and burn-bench do; without it the prompt is torch.randint from --seed. --per-iter prints, before the
summary, one JSON line per iteration in burn-bench's form ({"iteration", "warmup", "ttft_ms", "e2e_ms",
"decode_tok_s", "first_ids"}), which `runner adapter pytorch` reads.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "torchllama"))
sys.path.insert(1, os.path.join(HERE, "..", "internal", "worker", "py"))  # eager.py (transformers generate), for --check --eager

import torch  # noqa: E402

import llama  # noqa: E402

TINY = dict(vocab_size=512, hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=1024, rope_theta=10000.0, rms_norm_eps=1e-5,
            tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)


def synth(out, seed=0, cfg=None, std=0.02):
    """synth writes a random Llama checkpoint in HF layout (uniform weights with std `std`, unit norms)."""
    from safetensors.torch import save_file

    c = dict(TINY if cfg is None else cfg)
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    a = std * 3 ** 0.5
    hd = c["hidden_size"] // c["num_attention_heads"]
    d, i, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    kv = c["num_key_value_heads"] * hd

    def u(*shape):
        return (torch.rand(*shape, generator=g) * 2 - 1) * a

    t = {"model.embed_tokens.weight": u(v, d), "model.norm.weight": torch.ones(d)}
    if not c["tie_word_embeddings"]:
        t["lm_head.weight"] = u(v, d)
    for n in range(c["num_hidden_layers"]):
        p = f"model.layers.{n}."
        t.update({p + "self_attn.q_proj.weight": u(d, d), p + "self_attn.k_proj.weight": u(kv, d),
                  p + "self_attn.v_proj.weight": u(kv, d), p + "self_attn.o_proj.weight": u(d, d),
                  p + "mlp.gate_proj.weight": u(i, d), p + "mlp.up_proj.weight": u(i, d),
                  p + "mlp.down_proj.weight": u(d, i),
                  p + "input_layernorm.weight": torch.ones(d), p + "post_attention_layernorm.weight": torch.ones(d)})
    save_file(t, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    conf = dict(c, architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu", torch_dtype="float32")
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(conf, f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": c["bos_token_id"], "eos_token_id": c["eos_token_id"]}, f)
    return out


def median_tps(times_list):
    """median_tps returns median decode tok/s and median TTFT in ms over iterations of token_ns lists."""
    tps = [(len(t) - 1) / ((t[-1] - t[0]) / 1e9) for t in times_list if len(t) > 1]
    ttft = [t[0] / 1e6 for t in times_list]
    return statistics.median(tps) if tps else float("nan"), statistics.median(ttft)


def runner_prompt(seed, name, n, vocab):
    """runner_prompt mirrors runner/internal/workload.Prompt: n ids in [3, vocab) from splitmix64."""
    golden, mask = 0x9E3779B97F4A7C15, (1 << 64) - 1

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    state = (seed ^ golden) & mask
    for b in name.encode():
        state = mix(state ^ b)
    span = max(vocab - 3, 1)
    out = []
    for _ in range(n):
        state = (state + golden) & mask
        out.append(3 + mix(state) % span)
    return out


def set_inductor(pairs):
    """set_inductor sets torch._inductor.config fields from KEY=VALUE strings (VALUE as JSON when it parses: 0, true,
    "x"; else the string), for experiments on the engine's own loop the engine has no option for (e.g.
    realize_opcount_threshold=0, which decides whether Inductor recomputes a pointwise input inside each GEMV program
    or writes it once). A dotted KEY reaches a sub-config (triton.cudagraphs). Returns what it set; an unknown key is
    an error, not a silent no-op."""
    import torch._inductor.config as cfg

    done = {}
    for kv in pairs or []:
        key, sep, raw = kv.partition("=")
        if not sep:
            raise SystemExit(f"--inductor {kv!r}: want KEY=VALUE")
        try:
            val = json.loads(raw)
        except ValueError:
            val = raw
        obj, parts = cfg, key.split(".")
        for part in parts[:-1]:
            obj = getattr(obj, part, None)
            if obj is None:
                raise SystemExit(f"--inductor {kv!r}: torch._inductor.config has no {key}")
        if not hasattr(obj, parts[-1]):
            raise SystemExit(f"--inductor {kv!r}: torch._inductor.config has no {key}")
        setattr(obj, parts[-1], val)
        done[key] = val
    return done


def agree(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def run(args):
    tmp = None
    if args.dry:
        tmp = tempfile.mkdtemp(prefix="cib-bench-")
        # A larger weight scale than a trained model's spreads the logits, so greedy paths wander and a
        # token check means something.
        args.model = synth(os.path.join(tmp, "tiny"), std=0.3)
        args.device, args.dtype = "cpu", "f32"
        args.prompt, args.new, args.iters = min(args.prompt, 16), min(args.new, 24), min(args.iters, 2)
        if args.cuda_graph == "on":
            args.cuda_graph = "off"
    dev = torch.device(args.device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", 0)
    torch.set_grad_enabled(False)
    dtype = llama.DTYPES[args.dtype]
    cfg, host, params = llama.load_host(args.model, dtype)
    if args.case:
        prompt = runner_prompt(args.seed, args.case, args.prompt, cfg.vocab)
    else:
        g = torch.Generator().manual_seed(args.seed)
        prompt = torch.randint(3, cfg.vocab, (args.prompt,), generator=g).tolist()
    max_seq = llama.cache_length(args.prompt + args.new, args.attention)
    model = llama.build(cfg, host, dev, max_seq)
    model.set_decode_attention(args.attention)
    model.set_mlp(args.mlp)
    model.set_fusion(args.fusion)
    del host
    llama.set_tuning(args.tuning, args.refine)  # as the engine: refine=in-graph's cached tunings apart from refine=off's
    inductor = set_inductor(args.inductor)
    opts = llama.compile_options(dev, args.compile)
    if args.cuda_graph == "auto":
        args.cuda_graph = "on" if dev.type == "cuda" else "off"
    graph = args.cuda_graph == "on"
    if args.refine == "in-graph" and not graph:
        sys.exit("bench.py: --refine in-graph times the decode step's CUDA graph: it needs --cuda-graph on (a cuda device)")
    t = time.perf_counter()
    dec = llama.Decoder(model, dev, opts, None, graph, device_events=dev.type == "cuda", lookahead=args.lookahead)
    dec.refine = args.refine
    dec.prepare(1, [args.prompt], args.new)
    compile_s = time.perf_counter() - t
    report = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "torch": torch.__version__,
              "dtype": args.dtype, "params": params, "prompt": args.prompt, "new": args.new,
              "compile": args.compile, "tuning": args.tuning, "refine": args.refine, "attention": args.attention, "mlp": args.mlp, "fusion": args.fusion, "cuda_graph": args.cuda_graph, "lookahead": dec.lookahead, "compile_s": round(compile_s, 2)}
    if inductor:
        report["inductor"] = inductor
    if dec.refined:
        report["refined"] = {f"b{b}-s{n}": ch for (b, n), ch in sorted(dec.refined.items())}
    ok = True
    if args.check:
        steps, _, _ = dec.generate(prompt, 1, args.new, time.perf_counter_ns())
        ref = [s[0] for s in steps]
        if graph:
            plain = llama.Decoder(model, dev, opts, None, False, device_events=False)
            key = dec.session_key(1, args.prompt + args.new)
            plain.sessions[key] = llama.Session(model, 1, dev, key[1])
            plain.sessions[key].step_fn = dec.sessions[key].step_fn
            psteps, _, _ = plain.generate(prompt, 1, args.new, time.perf_counter_ns())
            n = agree(ref, [s[0] for s in psteps])
            report["check_graph_vs_nograph_agree"] = f"{n}/{args.new}"
            ok = ok and n == args.new
        nocomp = llama.Decoder(model, dev, None, None, False, device_events=False)
        nocomp.prepare(1, [args.prompt])
        nsteps, _, _ = nocomp.generate(prompt, 1, args.new, time.perf_counter_ns())
        report["check_compiled_vs_plain_agree"] = f"{agree(ref, [s[0] for s in nsteps])}/{args.new}"
        if args.eager:
            import eager
            e = eager.Eager(args.model, dev, dtype, lambda: llama.sync(dev))
            esteps, _, _ = e.generate(prompt, 1, args.new, time.perf_counter_ns())
            report["check_compiled_vs_transformers_agree"] = f"{agree(ref, [s[0] for s in esteps])}/{args.new}"
            del e
        report["first_tokens"] = ref[:8]
    times = []
    for i in range(args.warmup + args.iters):
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        timed = args.nvtx and i >= args.warmup and dev.type == "cuda"
        if timed:  # a range profilers can filter on (ncu --nvtx --nvtx-include "timed/"): not warm-up, compile or tuning
            torch.cuda.nvtx.range_push("timed")
        steps, tt, dev_ns = dec.generate(prompt, 1, args.new, time.perf_counter_ns())
        if timed:
            torch.cuda.nvtx.range_pop()
        times.append(tt)
        if args.per_iter and len(tt) > 1:
            warm = i < args.warmup
            print(json.dumps({"iteration": i if warm else i - args.warmup, "warmup": warm, "ttft_ms": round(tt[0] / 1e6, 3),
                              "e2e_ms": round(tt[-1] / 1e6, 3),
                              "decode_tok_s": round((len(tt) - 1) / ((tt[-1] - tt[0]) / 1e9), 3),
                              "first_ids": [int(st[0]) for st in steps[:8]]}), flush=True)
    times = times[args.warmup:]
    tps, ttft = median_tps(times)
    report.update({"decode_tok_s": round(tps, 1), "ttft_ms": round(ttft, 2)})
    if dev.type == "cuda":
        report["peak_alloc_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
        d = dev_ns
        report["device_decode_tok_s"] = round((len(d) - 1) / ((d[-1] - d[0]) / 1e9), 1)
    print(json.dumps(report), flush=True)
    if tmp:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--model")
    r.add_argument("--device", default="cuda")
    r.add_argument("--dtype", default="bf16", choices=sorted(llama.DTYPES))
    r.add_argument("--prompt", type=int, default=128)
    r.add_argument("--new", type=int, default=256)
    r.add_argument("--iters", type=int, default=5)
    r.add_argument("--warmup", type=int, default=1)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--case", help="draw the runner's prompt ids for --seed and this case name (e.g. p128-n256)")
    r.add_argument("--nvtx", action="store_true", help="cuda: mark each timed iteration with an NVTX range named timed, for a profiler's filter")
    r.add_argument("--per-iter", action="store_true", help="a JSON line per iteration (burn-bench's form) before the summary")
    r.add_argument("--compile", default="inductor", choices=list(llama.COMPILE_SETTINGS))
    r.add_argument("--tuning", default="cached", choices=list(llama.TUNING), help="as the engine's option tuning")
    r.add_argument("--refine", default="off", choices=list(llama.REFINE), help="as the engine's option refine")
    r.add_argument("--attention", default="sdpa", choices=list(llama.ATTENTION), help="the decode step's attention, as the engine's option")
    r.add_argument("--mlp", default="fused", choices=list(llama.MLP), help="the gate/up projection's form, as the engine's option")
    r.add_argument("--fusion", default="gpt-fast", choices=list(llama.FUSION), help="the small ops around attention, as the engine's option")
    r.add_argument("--inductor", action="append", metavar="KEY=VALUE",
                   help="set a torch._inductor.config field before compiling (repeatable; an experiment knob, not an engine option)")
    r.add_argument("--cuda-graph", default="auto", choices=["auto", "on", "off"], help="auto: on for cuda")
    r.add_argument("--lookahead", type=int, choices=[0, 1], default=None, help="queue the next step before reading a token (default: 1 on cuda, 0 on cpu)")
    r.add_argument("--eager", action="store_true", help="with --check: also compare with transformers generate")
    r.add_argument("--check", action="store_true", help="self-check token agreement before timing")
    r.add_argument("--dry", action="store_true", help="run the same code on CPU on a tiny temp checkpoint")
    s = sub.add_parser("synth")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.cmd == "synth":
        synth(a.out, a.seed)
        return 0
    if not a.dry and not a.model:
        p.error("run needs --model or --dry")
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
