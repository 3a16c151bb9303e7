"""llama.py: a gpt-fast-style Llama in plain torch for the pytorch engine's "compiled" mode.

Weights come straight from an HF-style directory (config.json + *.safetensors, HF tensor names). The layout
is built for batch decoding speed: q/k/v and gate/up projections fused into one matrix each, a static KV
cache written in place (index_put_ at a device-side position tensor), SDPA with grouped-query attention done
by grouping the query heads of each KV head (no K/V repeat), and a decode step that touches no host value so
it can be compiled with torch.compile(fullgraph=True, dynamic=False) and captured into one CUDA graph.

The numerics follow transformers' LlamaForCausalLM (RMSNorm in fp32, rotate-half RoPE with cos/sin computed
in fp32 and cast to the model dtype, llama3 RoPE scaling), so greedy tokens match it and the fp32 reference.
No code here imports transformers: bench/bench.py runs the same loop without the Go engine.
"""

import glob
import json
import math
import os
import re
import time

import torch
import torch.nn.functional as F
from torch import nn

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}

# Attention of the one-token decode step (prefill always uses SDPA): sdpa = F.scaled_dot_product_attention with a
# bool mask over the static cache (gpt-fast's; on the H200 cuDNN's kernel, 6.7 µs a layer for TinyLlama's 0.26 MB of KV at
# p128-n128, results/h200-2026-12-02-s3);
# flex = FlexAttention (torch.nn.attention.flex_attention) with native GQA and the causal cut as a score_mod on
# the device-side position, which Inductor lowers to its flex-decoding Triton kernel (split over the KV length);
# math = the attention written out in plain ops (scores as a broadcast multiply and sum over head_dim, the causal cut
# and softmax in fp32, the weighted sum of V over the cache), which Inductor lowers to Triton reductions parallel over
# the cache positions: on the H200 (2026-12-03, results/h200-2026-12-03-s14) SDPA's cuDNN kernel took 8.2 µs a layer
# over TinyLlama's 384-position cache and 31.9 µs over 2048 positions, with GQA grouping giving it one block per KV
# head (4 on TinyLlama), plus two small mask kernels a layer; flex took 9.6 and 63.0 µs.
ATTENTION = ("sdpa", "flex", "math")

# The gate/up projection of the MLP: fused = one F.linear over the concatenated gate+up weights, then silu(gate) * up
# from the two halves of its output; split = two F.linear calls, over the gate and up halves of the same weights
# (views, no copy), as gpt-fast's FeedForward writes it. The weights and the arithmetic are the same; what differs
# is what Inductor makes of it on cuda, where coordinate-descent tuning turns each M=1 matmul into a reduction. The
# hope for split was one kernel for both matmuls with silu * up as its epilogue; on the H200 (2026-12-02, 8B) Inductor
# kept silu * up as a prologue of the down projection in both forms, and split ran 17% slower (one launch each,
# results/h200-2026-12-02-s8). fused stays the default.
MLP = ("fused", "split")

# The small ops around attention, per layer: gpt-fast = as gpt-fast writes them (a bool causal mask that SDPA's
# lowering turns into an additive one at every layer, K and V written into two caches by two index_puts: on the
# H200's 8B decode graph, 2026-12-02, one mask kernel and two cache-write kernels a layer, results/h200-2026-12-02-s8);
# more = the additive mask built once per step in the model's dtype (and repeated for the query-head groups once),
# and K and V written by one index_put into one stacked [2, batch, kv_heads, S, head_dim] cache a layer. The same
# arithmetic (a bool mask is SDPA's 0/-inf additive mask), fewer kernels a layer if Inductor keeps them so — the
# question the option is for, measured on a GPU before it may become the default.
FUSION = ("gpt-fast", "more")

# Prefill's attention: masked = gpt-fast's, the prompt's queries over the whole static cache under the bool causal mask
# (the same SDPA call as the decode step, any start position); causal = the prompt's queries over the prompt's own keys
# and values with is_causal=True and no mask, K/V repeated for the query heads (prefill always starts at position 0
# here: Decoder.generate and the libtorch export's Prefill) — what fused attention kernels are built for, with no
# [heads*t, S] bias made per layer and none of the S - t masked keys read. On the H200 (2026-12-03) libtorch's
# AOTInductor prefill of 2032 tokens took 116.5 ms against 25.0 for the same masked SDPA run eagerly
# (results/h200-2026-12-03-s13); the option is the question whether the mask is where that goes.
PREFILL_ATTENTION = ("masked", "causal")


def cache_length(need, attention):
    """cache_length is the static KV cache's length for sequences of up to need positions: a multiple of 64, of 128
    with flex attention (FlexAttention's default block size along the keys: a whole number of blocks leaves its
    decoding kernel no partial block to handle)."""
    m = 128 if attention == "flex" else 64
    return -(-need // m) * m


TUNING = ("cached", "per-process")

# REFINE: off, or in-graph (Session.refine_in_graph: each GEMV kernel's launch configuration re-chosen by timing the
# decode step's CUDA graph after coordinate descent, which times kernels alone).
REFINE = ("off", "in-graph")


def set_tuning(name, refine="off"):
    """set_tuning applies the "tuning" option (with "refine", which under cached tuning keeps its own cache:
    cache_namespace; returns that directory, else None): cached (default) keeps Triton kernels out of Inductor's FX graph
    cache, so a process that hits that cache builds each kernel from its source and reads the .best_config an
    earlier process's coordinate-descent tuning saved (torch 2.11 otherwise restores them from before tuning and
    tunes again: on the H200, 20 of 24 kernels settled differently from launch to launch), and mends triton.Config
    so that kernels from Inductor's compile workers keep the mark that their cached configuration was tuned
    (keep_coordesc_mark); per-process has each process tune every kernel itself, neither reading nor writing Inductor's
    autotune cache (autotune_local_cache and autotune_remote_cache off). torch's default lies between the two, and
    is no independent draw per process: on the H200 (2026-12-03, results/h200-2026-12-03-s16) the kernels a process
    restored from its FX graph bundle were tuned again, but every other kernel replayed the .best_config that any
    earlier process had saved for the same source, another engine variant's included (compile=inductor-pdl's launches
    2 and 3 replayed launch 1's tuning, 50 and 52 of its kernels)."""
    if name not in TUNING:
        raise ValueError(f"tuning {name!r}: want one of {', '.join(TUNING)}")
    if name == "cached":
        torch._inductor.config.bundle_triton_into_fx_graph_cache = False
        keep_coordesc_mark()
        if refine == "in-graph":
            return cache_namespace("refine-in-graph")
    else:
        torch._inductor.config.autotune_local_cache = False
        torch._inductor.config.autotune_remote_cache = False
    return None


def cache_namespace(name):
    """cache_namespace moves this process's Inductor cache (TORCHINDUCTOR_CACHE_DIR: FX graphs, generated kernels and
    their .best_config tunings) into its subdirectory name, before anything is compiled, and returns that directory.
    A kernel's tuning is filed by its source, and refine=in-graph compiles the same graph, hence the same sources, as
    the plain variant, then saves other configurations for them: in one cache the variant run second replays the
    first's tuning, refined or not (on the H200, 2026-12-03, a refine prepare rewrote five GEMVs' tunings that the
    default variant's launches had replayed). Idempotent within a process."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    base = cache_dir()
    if os.path.basename(os.path.normpath(base)) == name:
        return base
    d = os.path.join(base, name)
    os.makedirs(d, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = d
    return d


def keep_coordesc_mark(config_cls=None):
    """keep_coordesc_mark makes a Triton launch configuration keep, through pickling, the mark Inductor puts on one that
    coordinate descent found (found_by_coordesc). A kernel read back from the autotune cache carries the mark, and
    Inductor tunes again every kernel whose configuration lacks it. Kernels compiled in Inductor's worker processes
    (parallel compile, once its pool is up) come back pickled, and triton.Config.__setstate__ (Triton 3.6) restores
    only its own fields: the mark is lost and the process tunes the kernel again from its cached configuration,
    where the benchmark's noise can move it. On the 8B (H200, 2026-12-03, results/h200-2026-12-03-s15) launches that
    were to replay one tuning ran up to 178 coordinate-descent benchmarks and 19 of 48 kernels settled elsewhere;
    TinyLlama, whose kernels mostly compile before the pool is up, rarely showed it. config_cls: the class to mend
    (triton.Config by default); returns whether the mark now survives (True also when the class needs no mending),
    False without Triton (the cpu: no Triton kernels, nothing to keep)."""
    if config_cls is None:
        try:
            import triton
        except ImportError:
            return False
        config_cls = triton.Config
    restore = config_cls.__dict__.get("__setstate__")
    if restore is None or getattr(restore, "keeps_coordesc_mark", False):
        return True  # default unpickling restores every attribute, or mended already

    def __setstate__(self, state):
        restore(self, state)
        if state.get("found_by_coordesc"):
            self.found_by_coordesc = True

    __setstate__.keeps_coordesc_mark = True
    config_cls.__setstate__ = __setstate__
    return True


COMPILE_SETTINGS = ("inductor", "inductor-thorough", "inductor-realize", "inductor-pdl", "max-autotune", "inductor-cublas",
                    "aot_eager", "none")


def compile_options(device, name):
    """compile_options maps the "compile" option to torch.compile keyword arguments for a step, or None.

    inductor: Inductor with gpt-fast's settings on cuda (coordinate-descent tuning turns M=1 matmuls into
    tuned reductions that reach peak memory bandwidth, see torch/_inductor/decomposition.py: mm);
    inductor-thorough: the same with a wider tuning search — coordinate descent checks every direction at radius 2
    (coordinate_descent_check_all_directions, coordinate_descent_search_radius) and starts from the larger
    pointwise/reduction config sets (max_autotune_pointwise): the reductions' configurations differed from process
    to process on the H200 (20 of 24 kernels, TPOT 4.92-5.57 ms), a sign that radius-1 descent stops in different
    local optima; more compile time for, perhaps, the best of them every time;
    inductor-realize: the same as inductor, but a pointwise result that reads two or more buffers is written once
    (realize_acc_reads_threshold=1) instead of being recomputed inside each consumer: on the H200's 8B (2026-12-02,
    results/h200-2026-12-02-s8) the down, qkv and wo GEMVs ran at 46-77% of the memory bandwidth where gate+up ran at
    97-100%, each of their programs reloading and recomputing its fused prologue (silu(gate)*up, RMSNorm's scaling) —
    written once, a GEMV reads one ready vector; the price is more, smaller pointwise kernels (not yet measured);
    inductor-pdl: the same as inductor, with Programmatic Dependent Launch in Inductor's Triton kernels
    (triton.enable_pdl, opt-in in torch 2.11; Hopper and later): a kernel is launched while the one before it runs and
    waits (griddepcontrol.wait) only where it first reads what that one wrote — aimed at the ~0.9 µs gap at each of the
    decode graph's ~245 (TinyLlama) to ~356 (8B) kernel boundaries, 229 and 384 µs a token on the H200
    (results/h200-2026-12-03-s14, -s8);
    max-autotune: the same as inductor plus Inductor's max_autotune; inductor-cublas: Inductor's defaults, without
    coordinate-descent tuning, so M=1 matmuls stay cuBLAS calls (GEMV) and only the rest is generated Triton;
    aot_eager: Dynamo + AOTAutograd tracing with no code generation (cheap; checks the step traces as one
    graph); none: plain eager ops."""
    if name == "none":
        return None
    kw = {"fullgraph": True, "dynamic": False}
    if name == "aot_eager":
        kw["backend"] = "aot_eager"
        return kw
    opts = {}
    if device.type == "cuda":
        opts = {"coordinate_descent_tuning": name != "inductor-cublas", "triton.unique_kernel_names": True}
    if name == "max-autotune":
        opts["max_autotune"] = True
    if name == "inductor-realize":
        opts["realize_acc_reads_threshold"] = 1
    if name == "inductor-pdl" and device.type == "cuda":
        opts["triton.enable_pdl"] = True
    if name == "inductor-thorough" and device.type == "cuda":
        opts.update({"coordinate_descent_check_all_directions": True, "coordinate_descent_search_radius": 2,
                     "max_autotune_pointwise": True})
    if name not in COMPILE_SETTINGS or name in ("aot_eager", "none"):
        raise ValueError(f"unknown compile setting {name!r}")
    kw["options"] = opts
    return kw


class Unsupported(Exception):
    """Unsupported marks a model or request this implementation cannot serve."""


class Config:
    """Config holds the Llama hyper-parameters read from config.json."""

    def __init__(self, d):
        if d.get("model_type", "llama") not in ("llama",):
            raise Unsupported(f"config.json: model_type {d.get('model_type')!r}, want llama")
        if d.get("attention_bias") or d.get("mlp_bias"):
            raise Unsupported("config.json: attention_bias/mlp_bias are not supported")
        act = d.get("hidden_act", "silu")
        if act != "silu":
            raise Unsupported(f"config.json: hidden_act {act!r}, want silu")
        self.vocab = int(d["vocab_size"])
        self.dim = int(d["hidden_size"])
        self.inter = int(d["intermediate_size"])
        self.layers = int(d["num_hidden_layers"])
        self.heads = int(d["num_attention_heads"])
        self.kv_heads = int(d.get("num_key_value_heads") or self.heads)
        self.head_dim = int(d.get("head_dim") or self.dim // self.heads)
        self.eps = float(d.get("rms_norm_eps", 1e-6))
        self.max_pos = int(d.get("max_position_embeddings", 2048))
        self.tied = bool(d.get("tie_word_embeddings", False))
        # transformers 4 writes rope_theta + rope_scaling, transformers 5 rope_parameters.
        rope = d.get("rope_parameters") or d.get("rope_scaling") or {}
        self.rope_theta = float(rope.get("rope_theta") or d.get("rope_theta") or 10000.0)
        self.rope_type = rope.get("rope_type") or rope.get("type") or "default"
        if self.rope_type not in ("default", "llama3"):
            raise Unsupported(f"config.json: rope type {self.rope_type!r}, want default or llama3")
        self.rope = rope
        if self.heads % self.kv_heads:
            raise Unsupported(f"config.json: {self.heads} heads not a multiple of {self.kv_heads} kv heads")

    @classmethod
    def from_dir(cls, path):
        with open(os.path.join(path, "config.json")) as f:
            return cls(json.load(f))


def inv_freq(cfg):
    """inv_freq returns the RoPE inverse frequencies exactly as transformers computes them (fp32)."""
    f = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.int64).to(torch.float) / cfg.head_dim))
    if cfg.rope_type != "llama3":
        return f
    factor = cfg.rope["factor"]
    low, high = cfg.rope["low_freq_factor"], cfg.rope["high_freq_factor"]
    old = cfg.rope.get("original_max_position_embeddings") or cfg.max_pos
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / f
    g = torch.where(wavelen > low_wavelen, f / factor, f)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * g / factor + smooth * g
    medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, g)


def rope_tables(cfg, seq, dtype):
    """rope_tables returns cos and sin [seq, head_dim] for positions 0..seq-1, computed in fp32, cast to dtype."""
    pos = torch.arange(seq, dtype=torch.float32)
    freqs = torch.outer(pos, inv_freq(cfg))
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rms_norm(x, w, eps):
    dt = x.dtype
    x = x.to(torch.float32)
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return w * x.to(dt)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def frozen(t):
    return nn.Parameter(t, requires_grad=False)


def flex_decode(q, kc, vc, pos):
    """flex_decode is the decode step's attention with FlexAttention: q [b, heads, t, d] over the whole static cache
    [b, kv_heads, S, d] with native GQA; key j is visible to the query at position p when j <= p, applied as a
    score_mod on the device-side positions (no block mask: the cache is short, and one mask serves every step)."""
    from torch.nn.attention.flex_attention import flex_attention

    def causal(score, b, h, q_idx, kv_idx):
        return torch.where(kv_idx <= pos[q_idx], score, -float("inf"))

    return flex_attention(q, kc, vc, score_mod=causal, enable_gqa=True)


def math_decode(q, kc, vc, mask):
    """math_decode is the decode step's attention in plain ops: q [b, heads, 1, d] over the whole static cache
    [b, kv_heads, S, d], GQA by broadcasting each KV head over its query-head group (nothing repeated in memory once
    compiled), mask the step's causal row ([1, S] bool, or the additive rows of fusion=more, all alike), scores and
    softmax in fp32. Inductor turns the two sums into reductions over head_dim and over the cache positions."""
    b, h, _, d = q.shape
    kvh = kc.shape[1]
    qf = q.reshape(b, kvh, h // kvh, 1, d).float()
    s = (qf * kc[:, :, None].float()).sum(-1) * d ** -0.5  # [b, kv_heads, group, S]
    m = mask[0]
    s = s.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else s + m.float()
    p = torch.softmax(s, dim=-1)
    y = (p[..., None] * vc[:, :, None].float()).sum(-2)  # [b, kv_heads, group, d]
    return y.to(q.dtype).reshape(b, h, 1, d)


class Block(nn.Module):
    """Block is one decoder layer with fused qkv and gate/up weights."""

    def __init__(self, cfg, wqkv, wo, w13, w2, n1, n2):
        super().__init__()
        self.cfg = cfg
        self.decode_attention = "sdpa"
        self.mlp = "fused"
        self.fusion = "gpt-fast"
        self.prefill_attention = "masked"
        self.wqkv, self.wo, self.w13, self.w2 = frozen(wqkv), frozen(wo), frozen(w13), frozen(w2)
        self.n1, self.n2 = frozen(n1), frozen(n2)

    def forward(self, x, cos, sin, mask, pos, kc, vc, kv=None):
        c = self.cfg
        b, t, _ = x.shape
        h = rms_norm(x, self.n1, c.eps)
        q, k, v = F.linear(h, self.wqkv).split([c.heads * c.head_dim, c.kv_heads * c.head_dim, c.kv_heads * c.head_dim], dim=-1)
        q = q.view(b, t, c.heads, c.head_dim).transpose(1, 2)
        k = k.view(b, t, c.kv_heads, c.head_dim).transpose(1, 2)
        v = v.view(b, t, c.kv_heads, c.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # Static cache, written in place at the device-side positions (Inductor re-inplaces index_put).
        if kv is not None:
            kv[:, :, :, pos] = torch.stack((k, v))  # kc and vc are kv[0] and kv[1]: one write for both
        else:
            kc[:, :, pos] = k
            vc[:, :, pos] = v
        if t == 1 and self.decode_attention == "flex":
            y = flex_decode(q, kc, vc, pos)
        elif t == 1 and self.decode_attention == "math":
            y = math_decode(q, kc, vc, mask)
        elif t > 1 and self.prefill_attention == "causal":
            # The prompt from position 0: its own keys, causally (what the mask over the cache leaves visible).
            g = c.heads // c.kv_heads
            kk, vv = (k, v) if g == 1 else (k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1))
            y = F.scaled_dot_product_attention(q, kk, vv, is_causal=True)
        else:
            # Grouped-query attention without repeating K/V: the g query heads of each KV head become g*t rows.
            g = c.heads // c.kv_heads
            q = q.reshape(b, c.kv_heads, g * t, c.head_dim)
            m = mask if self.fusion == "more" or g == 1 else mask.repeat(g, 1)  # more: repeated once, by Llama.forward
            y = F.scaled_dot_product_attention(q, kc, vc, attn_mask=m)
            # reshape, not view: SDPA kernels (e.g. CUDA mem-efficient) may return a transposed, non-contiguous layout.
            y = y.reshape(b, c.heads, t, c.head_dim)
        y = y.transpose(1, 2).reshape(b, t, c.heads * c.head_dim)
        x = x + F.linear(y, self.wo)
        h = rms_norm(x, self.n2, c.eps)
        if self.mlp == "split":
            n = self.w13.shape[0] // 2
            gate, up = F.linear(h, self.w13[:n]), F.linear(h, self.w13[n:])
        else:
            gate, up = F.linear(h, self.w13).chunk(2, dim=-1)
        return x + F.linear(F.silu(gate) * up, self.w2)


class Llama(nn.Module):
    """Llama is the model; forward returns the logits of the last position only, [batch, vocab]."""

    def __init__(self, cfg, embed, blocks, norm, lm_head, max_seq):
        super().__init__()
        self.cfg = cfg
        self.max_seq = max_seq
        self.fusion = "gpt-fast"
        self.embed = frozen(embed)
        self.blocks = nn.ModuleList(blocks)
        self.norm = frozen(norm)
        self.lm_head = self.embed if lm_head is None else frozen(lm_head)
        cos, sin = rope_tables(cfg, max_seq, embed.dtype)
        self.register_buffer("cos", cos.to(embed.device), persistent=False)
        self.register_buffer("sin", sin.to(embed.device), persistent=False)

    def forward(self, idx, pos, caches):
        x = F.embedding(idx, self.embed)
        cos, sin = self.cos[pos], self.sin[pos]
        # Causal mask over the cache the caller passes ([t, S], S its length: the static cache here; any length up
        # to max_seq in the libtorch export, whose cache length is a dynamic dimension): key j is visible to the
        # query at position p when j <= p.
        mask = torch.arange(caches[0][0].shape[2], device=pos.device) <= pos.unsqueeze(-1)
        if self.fusion == "more":
            g = self.cfg.heads // self.cfg.kv_heads
            mask = torch.where(mask, 0.0, float("-inf")).to(x.dtype)
            mask = mask.repeat(g, 1) if g > 1 else mask
        for blk, c in zip(self.blocks, caches):
            x = blk(x, cos, sin, mask, pos, *c)  # c: (kc, vc), or (kc, vc, kv) with kc, vc views of kv (fusion=more)
        x = rms_norm(x[:, -1, :], self.norm, self.cfg.eps)
        return F.linear(x, self.lm_head)

    def set_decode_attention(self, name):
        """set_decode_attention picks the one-token decode step's attention (ATTENTION); prefill keeps SDPA."""
        if name not in ATTENTION:
            raise ValueError(f"attention {name!r}: want one of {', '.join(ATTENTION)}")
        for blk in self.blocks:
            blk.decode_attention = name

    def set_fusion(self, name):
        """set_fusion picks how the small ops around attention are written (FUSION); call it before new_caches."""
        if name not in FUSION:
            raise ValueError(f"fusion {name!r}: want one of {', '.join(FUSION)}")
        self.fusion = name
        for blk in self.blocks:
            blk.fusion = name

    def set_prefill_attention(self, name):
        """set_prefill_attention picks prefill's attention (PREFILL_ATTENTION); the decode step is not affected."""
        if name not in PREFILL_ATTENTION:
            raise ValueError(f"prefill_attention {name!r}: want one of {', '.join(PREFILL_ATTENTION)}")
        for blk in self.blocks:
            blk.prefill_attention = name

    def set_mlp(self, name):
        """set_mlp picks how the gate/up projection is computed (MLP), for every step."""
        if name not in MLP:
            raise ValueError(f"mlp {name!r}: want one of {', '.join(MLP)}")
        for blk in self.blocks:
            blk.mlp = name

    def cache_len(self, need):
        """cache_len is the static KV cache length for a request of need positions (prompt + new tokens): as gpt-fast
        sizes its cache per request (max_seq_length = prompt + new tokens), so the decode step's attention, which reads
        the whole static cache under a mask, costs what this request needs — not the longest request of the launch
        (on the H200, 2026-12-03: TinyLlama's p128-n256 decode 1.87 ms a token with a 2048-position cache, 1.29–1.32
        with its own 384). Rounded up as cache_length does, never over max_seq."""
        return min(cache_length(need, self.blocks[0].decode_attention if self.blocks else "sdpa"), self.max_seq)

    def new_caches(self, batch, length=None):
        c = self.cfg
        shape = (batch, c.kv_heads, self.max_seq if length is None else length, c.head_dim)
        kw = dict(dtype=self.embed.dtype, device=self.embed.device)
        if self.fusion == "more":
            kvs = [torch.zeros((2,) + shape, **kw) for _ in range(c.layers)]
            return [(kv[0], kv[1], kv) for kv in kvs]
        return [(torch.zeros(shape, **kw), torch.zeros(shape, **kw)) for _ in range(c.layers)]


def shard_files(path):
    """shard_files lists the model's safetensors files (single file or an index's shards)."""
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            return [os.path.join(path, s) for s in sorted(set(json.load(f)["weight_map"].values()))]
    files = sorted(glob.glob(os.path.join(path, "*.safetensors")))
    if not files:
        raise FileNotFoundError(f"{path}: no *.safetensors files")
    return files


def load_host(path, dtype):
    """load_host reads the weights into host memory as dtype with fused layouts; returns (cfg, tensors, params)."""
    from safetensors.torch import load_file

    cfg = Config.from_dir(path)
    raw = {}
    for f in shard_files(path):
        raw.update(load_file(f, device="cpu"))

    def take(name):
        try:
            t = raw.pop(name)
        except KeyError:
            raise KeyError(f"{path}: tensor {name} missing") from None
        return t.to(dtype)

    params = sum(t.numel() for t in raw.values())
    out = {"embed": take("model.embed_tokens.weight"), "norm": take("model.norm.weight"), "blocks": []}
    if "lm_head.weight" in raw and not cfg.tied:
        out["lm_head"] = take("lm_head.weight")
    else:
        raw.pop("lm_head.weight", None)
        out["lm_head"] = None
    for i in range(cfg.layers):
        p = f"model.layers.{i}."
        wqkv = torch.cat([take(p + "self_attn.q_proj.weight"), take(p + "self_attn.k_proj.weight"), take(p + "self_attn.v_proj.weight")])
        w13 = torch.cat([take(p + "mlp.gate_proj.weight"), take(p + "mlp.up_proj.weight")])
        out["blocks"].append(dict(wqkv=wqkv, wo=take(p + "self_attn.o_proj.weight"), w13=w13, w2=take(p + "mlp.down_proj.weight"),
                                  n1=take(p + "input_layernorm.weight"), n2=take(p + "post_attention_layernorm.weight")))
    leftover = [k for k in raw if not k.endswith("rotary_emb.inv_freq")]
    if leftover:
        raise Unsupported(f"{path}: unexpected tensors {leftover[:5]}")
    return cfg, out, params


def build(cfg, host, device, max_seq):
    """build moves host tensors to device and returns the Llama module."""
    dev = lambda t: None if t is None else t.to(device, non_blocking=False)
    blocks = [Block(cfg, **{k: dev(v) for k, v in b.items()}) for b in host["blocks"]]
    return Llama(cfg, dev(host["embed"]), blocks, dev(host["norm"]), dev(host["lm_head"]), max_seq)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Session:
    """Session is the static decode state for one batch size: KV caches, the token and position buffers, and
    the decode step (plain, compiled, and/or captured in a CUDA graph).

    The decode step reads the current token from self.tok and its position from self.pos, writes the argmax
    back into self.tok and advances self.pos, all on the device: a replay needs no host input at all."""

    def __init__(self, model, batch, device, length=None):
        self.model, self.batch, self.device = model, batch, device
        self.length = model.max_seq if length is None else length
        self.caches = model.new_caches(batch, self.length)
        self.tok = torch.zeros((batch, 1), dtype=torch.long, device=device)
        self.pos = torch.zeros((1,), dtype=torch.long, device=device)
        self.graph = None
        self.step_fn = self._step
        self.ring = torch.empty((0, batch), dtype=torch.long)

    def ensure_ring(self, n):
        """ensure_ring sizes the host buffer the tokens are copied into (pinned on cuda, so copies are async)."""
        if self.ring.shape[0] < n:
            self.ring = torch.zeros((n, self.batch), dtype=torch.long, pin_memory=self.device.type == "cuda")

    def _step(self, tok, pos, caches):
        nxt = torch.argmax(self.model(tok, pos, caches), dim=-1)
        tok.copy_(nxt.unsqueeze(1))
        pos.add_(1)

    def compile(self, kw):
        self.step_fn = torch.compile(self._step, **kw)

    def step(self):
        if self.graph is not None:
            self.graph.replay()
        else:
            self.step_fn(self.tok, self.pos, self.caches)

    def warm_and_capture(self, graph, warm_steps=3, refine=False):
        """warm_and_capture runs the step a few times (compiling it, loading kernels) and, if graph, captures one
        step into a CUDA graph. Cache contents are garbage afterwards; prefill overwrites what decode reads. refine
        (graph only): before the capture, refine_in_graph re-chooses the GEMV kernels' launch configurations."""
        start = 0  # max_seq >= 64 > warm_steps: every position stays inside the cache
        if graph:
            before, tuned = (_loaded_modules(), _coordesc_runs()) if refine else (set(), 0)
            s = torch.cuda.Stream(self.device)
            s.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(s):
                self.pos.fill_(start)
                for _ in range(warm_steps):
                    self.step_fn(self.tok, self.pos, self.caches)
            torch.cuda.current_stream(self.device).wait_stream(s)
            sync(self.device)
            # Only where this process tuned: a process replaying an earlier one's tuning (tuning=cached) replays its
            # refinement too, from the autotune cache, and does not draw again.
            if refine and _coordesc_runs() > tuned:
                self.refined = self.refine_in_graph(_loaded_modules() - before)
            self.pos.fill_(start)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                self.step_fn(self.tok, self.pos, self.caches)
            sync(self.device)
            self.graph = g
            # Check the graph replays (and leaves a sane state) before anyone times it.
            self.pos.fill_(start)
            g.replay()
            sync(self.device)
        else:
            self.pos.fill_(start)
            for _ in range(warm_steps):
                self.step_fn(self.tok, self.pos, self.caches)
            sync(self.device)

    def refine_in_graph(self, modules, steps=32, reps=3, gain=0.005):
        """refine_in_graph re-chooses the launch configuration of each GEMV kernel the step's compilation loaded
        (refine_kernels, over Inductor's kernels in modules) by timing the whole step as the decode loop runs it: a
        CUDA graph replayed `steps` times, the median of `reps` (_time_graph). Returns what changed."""
        import triton

        from kernels import triton_kernels

        steps = max(1, min(steps, self.length - 2))
        return refine_kernels(list(triton_kernels(only=modules)), lambda: self._time_graph(steps, reps), _build_launcher,
                              triton.Config, gain)

    def _time_graph(self, steps, reps):
        """_time_graph is the decode step's time in µs as the loop runs it: one eager step (loads any new launcher),
        a CUDA graph captured from position 0, replayed `steps` times per repetition; the median of `reps`."""
        s = torch.cuda.Stream(self.device)
        s.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(s):
            self.pos.fill_(0)
            self.step_fn(self.tok, self.pos, self.caches)
        torch.cuda.current_stream(self.device).wait_stream(s)
        sync(self.device)
        g = torch.cuda.CUDAGraph()
        self.pos.fill_(0)
        with torch.cuda.graph(g):
            self.step_fn(self.tok, self.pos, self.caches)
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        ts = []
        for _ in range(reps):
            self.pos.fill_(0)
            e0.record()
            for _ in range(steps):
                g.replay()
            e1.record()
            e1.synchronize()
            ts.append(e0.elapsed_time(e1) * 1e3 / steps)
        del g
        return sorted(ts)[len(ts) // 2]


def refine_kernels(kernels, time_step, build, config, gain=0.005):
    """refine_kernels re-chooses the launch configuration of each GEMV kernel among kernels ((name, Inductor
    CachingAutotuner) pairs: Triton reductions with "mm" in their name, M=1 matmuls with their fused prologues) by
    the time of the whole decode step, time_step() (µs), instead of the kernel's own. Coordinate descent benchmarks each
    kernel alone (after an L2 flush, the minimum of ~100 runs), and on the H200 (2026-12-03,
    results/h200-2026-12-03-s15) its choices differed between processes in ways that moved the 8B's step by 27%: one
    tuning ran the qkv, gate+up and down GEMVs at XBLOCK 2-4, another re-tuned them to XBLOCK 1 and ran 1.27x
    slower. Per kernel, in turn (greedy): XBLOCK 1, 2, 4 and 8 at its R0_BLOCK and warps, then half and twice the
    warps at the best XBLOCK; a candidate replaces the current configuration only when the step is at least `gain`
    faster, and one that does not build or run is passed over. build(obj, cfg) makes a launcher for cfg; config
    makes a configuration (triton.Config). A change is saved to Inductor's autotune cache, marked as coordinate
    descent's own result (later processes replay it: tuning=cached). Returns {kernel: "old -> new: step µs"}."""
    t_best = time_step()
    changed = {}
    for name, obj in kernels:
        c0 = obj.launchers[0].config
        if _GEMV.search(name) is None or "XBLOCK" not in c0.kwargs or "R0_BLOCK" not in c0.kwargs:
            continue
        t0, best, tried = t_best, (obj.launchers[0], c0), {(tuple(sorted(c0.kwargs.items())), c0.num_warps)}

        def trial(kwargs, warps):
            nonlocal t_best, best
            key = (tuple(sorted(kwargs.items())), warps)
            if key in tried or not 1 <= warps <= 32:
                return
            tried.add(key)
            cfg = config(dict(kwargs), num_warps=warps, num_stages=c0.num_stages)
            cfg.found_by_coordesc = True  # a replayed config: the kernel's first run must not tune it again
            try:
                launcher = build(obj, cfg)
                obj.launchers = [launcher]
                t = time_step()
            except Exception:  # a configuration that does not compile or launch (registers, shared memory)
                t = float("inf")
            if t < t_best * (1 - gain):
                t_best, best = t, (launcher, cfg)
            obj.launchers = [best[0]]

        for xb in (1, 2, 4, 8):
            trial({**c0.kwargs, "XBLOCK": xb}, c0.num_warps)
        for w in (best[1].num_warps // 2, best[1].num_warps * 2):
            trial(best[1].kwargs, w)
        obj.launchers = [best[0]]
        if best[1] is not c0:
            if getattr(obj, "save_cache_hook", None):
                obj.save_cache_hook(best[1], 0, found_by_coordesc=True)
            changed[name] = f"{_cfg_text(c0)} -> {_cfg_text(best[1])}: step {t0:.1f} -> {t_best:.1f} us"
    return changed


def _build_launcher(obj, cfg):
    """_build_launcher compiles cfg for Inductor's kernel obj and returns its launcher, as coordinate descent does."""
    if obj.fn.fn is None:  # compiled in a worker: the parent loads the kernel's source to build one
        obj.fn = obj._reload_kernel().fn
    with obj.lock:
        return obj._precompile_config(cfg).make_launcher()


# _GEMV picks the kernels refine_in_graph re-chooses: Inductor names a kernel by the ops it fuses, and an M=1 matmul
# lowered to a reduction carries "mm" among them.
_GEMV = re.compile(r"(^|_)mm(_|$)")


def _cfg_text(c):
    return ",".join([f"{k}={v}" for k, v in sorted(c.kwargs.items())] + [f"num_warps={c.num_warps}"])


def _coordesc_runs():
    """_coordesc_runs is how many coordinate-descent benchmarks this process has run (Inductor's own counter)."""
    from torch._dynamo.utils import counters

    return counters["inductor"]["coordesc_tuning_bench"]


def _loaded_modules():
    """_loaded_modules is kernels.code_modules(), imported when needed (llama.py is also imported where kernels.py
    has nothing to report)."""
    from kernels import code_modules

    return code_modules()


class _HostFence:
    """_HostFence stands in for a CUDA event on the CPU, where every op has finished when it returns."""

    def record(self):
        pass

    def synchronize(self):
        pass


class Decoder:
    """Decoder runs greedy generation with the static-cache loop: prefill, then one decode step per token.

    Each step's token is copied to (pinned) host memory and a fence event recorded behind the copy; the token
    is stamped (perf_counter_ns) when the host has waited on that fence, i.e. when it is on the host. With
    lookahead=1 (the default on cuda) the host queues step i+1 before waiting for token i, so the device never
    idles while the host reads a token; step i+1 needs nothing from the host (its input token and position are
    on the device). With lookahead=0 (cpu) each token is waited for right after its step."""

    def __init__(self, model, device, compile_decode, compile_prefill, cuda_graph, device_events, lookahead=None,
                 blocking_wait=False):
        self.model, self.device = model, device
        self.blocking_wait = blocking_wait  # fences with cudaEventBlockingSync: the host sleeps, not spins
        self.compile_decode, self.compile_prefill = compile_decode, compile_prefill
        self.cuda_graph, self.device_events = cuda_graph, device_events
        self.lookahead = (1 if device.type == "cuda" else 0) if lookahead is None else lookahead
        self.sessions = {}
        # refine: "in-graph" has each session re-choose its GEMV kernels' configurations by timing its CUDA graph
        # (Session.refine_in_graph; cuda graphs only); refined holds what changed, per session key.
        self.refine, self.refined = "off", {}
        self.fences = []
        self.start_event = torch.cuda.Event(enable_timing=True) if device_events else None
        self.prefill_fn = self._prefill
        if compile_prefill is not None:
            self.prefill_fn = torch.compile(self._prefill, **compile_prefill)

    def _prefill(self, ids, pos, caches):
        return torch.argmax(self.model(ids, pos, caches), dim=-1)

    def ensure_fences(self, n):
        """ensure_fences pre-creates n fence events, so creating them never lands in a token time."""
        while len(self.fences) < n:
            if self.device.type == "cuda":
                self.fences.append(torch.cuda.Event(enable_timing=self.device_events, blocking=self.blocking_wait))
            else:
                self.fences.append(_HostFence())

    def session_key(self, batch, need):
        """session_key names the session serving a request of batch rows and need positions: one per batch size and
        cache length (Llama.cache_len)."""
        return batch, self.model.cache_len(need)

    def prepare(self, batch, prompt_lens, max_new=1, need=None):
        """prepare builds the session for batch and the cache length that max(prompt_lens) + max_new needs (compile +
        graph capture) and compiles prefill for each prompt length, so no timed iteration pays for compilation. need
        (positions) picks the cache length instead, when the longest request is not max(prompt_lens) + max_new.
        Requests of other cache lengths get sessions of their own: call prepare once per length."""
        self.ensure_fences(max_new)
        key = self.session_key(batch, max(prompt_lens) + max_new if need is None else need)
        s = Session(self.model, batch, self.device, key[1])
        if self.compile_decode is not None:
            s.compile(self.compile_decode)
        s.warm_and_capture(self.cuda_graph, refine=self.refine == "in-graph" and bool(self.cuda_graph))
        if getattr(s, "refined", None) is not None:
            self.refined[key] = s.refined
        s.ensure_ring(max_new)
        self.sessions[key] = s
        if self.compile_prefill is not None:
            for n in sorted(set(prompt_lens)):
                ids = torch.zeros((batch, n), dtype=torch.long, device=self.device)
                for _ in range(2):
                    self.prefill_fn(ids, torch.arange(n, device=self.device), s.caches)
        sync(self.device)

    def generate(self, prompt, batch, n_new, t0):
        """generate returns (steps, token_ns, device_token_ns): steps[i] holds the batch's i-th output ids,
        token_ns[i] the perf_counter_ns offset from t0 when they were on the host, device_token_ns[i] (cuda)
        the same from CUDA events, counted from an event recorded at the start."""
        dev = self.device
        n = len(prompt)
        if n + n_new > self.model.max_seq:
            raise Unsupported(f"prompt {n} + {n_new} new tokens > static cache {self.model.max_seq}")
        key = self.session_key(batch, n + n_new)
        s = self.sessions.get(key)
        if s is None:
            self.prepare(batch, [n], n_new)
            s = self.sessions[key]
        self.ensure_fences(n_new)
        s.ensure_ring(n_new)
        fences, ring, lag = self.fences, s.ring, self.lookahead
        times = [0] * n_new

        def emit(j):
            fences[j].synchronize()
            times[j] = time.perf_counter_ns() - t0

        if self.start_event is not None:
            self.start_event.record()
        ids = torch.tensor([prompt] * batch, dtype=torch.long, device=dev)
        nxt = self.prefill_fn(ids, torch.arange(n, device=dev), s.caches)
        s.tok.copy_(nxt.unsqueeze(1))
        s.pos.fill_(n)
        ring[0].copy_(nxt, non_blocking=True)
        fences[0].record()
        if not lag:
            emit(0)
        tok = s.tok.view(-1)
        for i in range(1, n_new):
            s.step()
            ring[i].copy_(tok, non_blocking=True)
            fences[i].record()
            emit(i - lag)
        if lag:
            emit(n_new - 1)
        steps = ring[:n_new].tolist()
        dev_ns = None
        if self.device_events:
            dev_ns = [int(round(self.start_event.elapsed_time(f) * 1e6)) for f in fences[:n_new]]
        return steps, times, dev_ns
