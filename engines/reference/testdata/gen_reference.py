#!/usr/bin/env python3
"""Generate the reference engine's test fixtures with an independent numpy Llama.

For each fixture this writes, under testdata/<name>/:
  config.json              HF Llama config
  *.safetensors            random weights (fixed seed), stored as f32, f16 or bf16
  expected.json            prompt, greedy tokens and the logits before each token

The forward pass here recomputes the whole sequence in float64 at every step
(no KV cache), from the weights exactly as stored (f16/bf16 rounded values
upcast), so it shares no code or structure with the Go engine. RoPE follows
transformers' rotate_half convention and _compute_llama3_parameters.

Run from anywhere:  python3 engines/reference/testdata/gen_reference.py
Needs numpy and safetensors (pip install numpy safetensors). Seeds were picked so
that the greedy tokens vary and the top-2 logit gap stays well above fp32 error.
"""
import json
import math
import os
import struct

import numpy as np
from safetensors.numpy import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))

FIXTURES = [
    # Untied lm_head, grouped-query attention (4 heads share 2 KV heads), f32, one file.
    dict(name="gqa_untied_f32", seed=4, dtype="f32", shards=1,
         config=dict(vocab_size=48, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                     rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False),
         prompt=[1, 5, 17, 42, 9, 33, 2], steps=8),
    # Tied embeddings, plain multi-head attention, bf16 weights, no num_key_value_heads key.
    # Small embeddings keep the tied lm_head from just repeating the last token.
    dict(name="mha_tied_bf16", seed=1, embed_std=0.1, dtype="bf16", shards=1,
         config=dict(vocab_size=48, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                     num_attention_heads=2, max_position_embeddings=64,
                     rope_theta=500.0, rms_norm_eps=1e-6, tie_word_embeddings=True),
         prompt=[3, 40, 7, 7, 21], steps=6),
    # llama3 rope scaling with a small original context so every frequency band is hit
    # (wavelengths 6.3 / 63 / 628 / 6283 vs bounds 16 and 64), explicit head_dim (8, while
    # hidden/heads = 6), 4 query heads on 1 KV head, f16, two shards + index.
    dict(name="llama3_f16_sharded", seed=7, dtype="f16", shards=2,
         config=dict(vocab_size=48, hidden_size=24, intermediate_size=24, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=1, head_dim=8,
                     max_position_embeddings=256, rope_theta=10000.0, rms_norm_eps=1e-5,
                     tie_word_embeddings=False,
                     rope_scaling=dict(rope_type="llama3", factor=4.0, low_freq_factor=1.0,
                                       high_freq_factor=4.0, original_max_position_embeddings=64)),
         prompt=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25], steps=8),
]

TORCH_DTYPE = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}


def head_dim(c):
    return c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]


def kv_heads(c):
    return c.get("num_key_value_heads") or c["num_attention_heads"]


def make_weights(c, rng, embed_std):
    h, v, i, hd = c["hidden_size"], c["vocab_size"], c["intermediate_size"], head_dim(c)
    q, kv = c["num_attention_heads"] * hd, kv_heads(c) * hd

    def lin(out_f, in_f):
        return rng.standard_normal((out_f, in_f)) / math.sqrt(in_f)

    def norm():
        return 1.0 + 0.1 * rng.standard_normal(h)

    w = {"model.embed_tokens.weight": embed_std * rng.standard_normal((v, h))}
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = norm()
        w[p + "self_attn.q_proj.weight"] = lin(q, h)
        w[p + "self_attn.k_proj.weight"] = lin(kv, h)
        w[p + "self_attn.v_proj.weight"] = lin(kv, h)
        w[p + "self_attn.o_proj.weight"] = lin(h, q)
        w[p + "post_attention_layernorm.weight"] = norm()
        w[p + "mlp.gate_proj.weight"] = lin(i, h)
        w[p + "mlp.up_proj.weight"] = lin(i, h)
        w[p + "mlp.down_proj.weight"] = lin(h, i)
    w["model.norm.weight"] = norm()
    if not c["tie_word_embeddings"]:
        w["lm_head.weight"] = lin(v, h)
    return {k: a.astype(np.float32) for k, a in w.items()}


def bf16_bits(a):
    """Round float32 to bfloat16 (nearest even) and return the uint16 bits."""
    b = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return b.astype(np.uint16)


def bf16_value(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def write_bf16_safetensors(path, tensors):
    """safetensors.numpy cannot write bf16 (numpy has no such dtype): write the format by hand."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        data = tensors[name].astype("<u2").tobytes()
        header[name] = {"dtype": "BF16", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def store(fx, w32):
    """Write the weights in the fixture's dtype; return the values as stored, as float64."""
    d = os.path.join(HERE, fx["name"])
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.endswith(".safetensors") or f == "model.safetensors.index.json":
            os.remove(os.path.join(d, f))
    names = list(w32)
    if fx["shards"] == 1:
        groups = [("model.safetensors", names)]
    else:
        cut = len(names) // 2
        n = fx["shards"]
        groups = [(f"model-0000{k + 1}-of-0000{n}.safetensors", part)
                  for k, part in enumerate([names[:cut], names[cut:]])]
    stored = {}
    for fname, part in groups:
        path = os.path.join(d, fname)
        if fx["dtype"] == "bf16":
            bits = {k: bf16_bits(w32[k]) for k in part}
            write_bf16_safetensors(path, bits)
            stored.update({k: bf16_value(b).astype(np.float64) for k, b in bits.items()})
        else:
            np_dtype = np.float32 if fx["dtype"] == "f32" else np.float16
            arrs = {k: w32[k].astype(np_dtype) for k in part}
            save_file(arrs, path, metadata={"format": "pt"})
            back = load_file(path)  # round-trip through the official reader
            for k in part:
                assert np.array_equal(back[k], arrs[k]), k
            stored.update({k: a.astype(np.float64) for k, a in arrs.items()})
    if len(groups) > 1:
        wm = {k: fname for fname, part in groups for k in part}
        total = sum(a.size for a in w32.values()) * {"f32": 4, "f16": 2, "bf16": 2}[fx["dtype"]]
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2, sort_keys=True)
            f.write("\n")
    return stored


def inv_freq(c, scaled=True):
    hd = head_dim(c)
    inv = 1.0 / (c["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    rs = c.get("rope_scaling")
    if not scaled or not rs:
        return inv
    # transformers.modeling_rope_utils._compute_llama3_parameters
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv
    out = np.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * out / factor + smooth * out
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return np.where(medium, smoothed, out)


def rms_norm(x, w, eps):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def apply_rope(x, inv):
    """x: [T, heads, hd]; position of row t is t."""
    t = np.arange(x.shape[0], dtype=np.float64)
    freqs = np.outer(t, inv)
    emb = np.concatenate([freqs, freqs], axis=-1)[:, None, :]
    half = x.shape[-1] // 2
    rot = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * np.cos(emb) + rot * np.sin(emb)


def forward(c, w, tokens, inv):
    """Logits at the last position of tokens, recomputing the whole sequence."""
    T, hd, nh, nkv = len(tokens), head_dim(c), c["num_attention_heads"], kv_heads(c)
    eps = c["rms_norm_eps"]
    x = w["model.embed_tokens.weight"][tokens]
    mask = np.triu(np.full((T, T), -np.inf), k=1)
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        a = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (a @ w[p + "self_attn.q_proj.weight"].T).reshape(T, nh, hd)
        k = (a @ w[p + "self_attn.k_proj.weight"].T).reshape(T, nkv, hd)
        v = (a @ w[p + "self_attn.v_proj.weight"].T).reshape(T, nkv, hd)
        q, k = apply_rope(q, inv), apply_rope(k, inv)
        rep = nh // nkv  # repeat_kv
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / math.sqrt(hd) + mask
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        o = np.einsum("hts,shd->thd", s, v).reshape(T, nh * hd)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        a = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = a @ w[p + "mlp.gate_proj.weight"].T
        u = a @ w[p + "mlp.up_proj.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * u) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x[-1], w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if c["tie_word_embeddings"] else w["lm_head.weight"]
    return head @ x


def greedy(c, w, prompt, steps, inv):
    seq, toks, logits, margins = list(prompt), [], [], []
    for _ in range(steps):
        lg = forward(c, w, seq, inv)
        top2 = np.sort(lg)[-2:]
        margins.append(float(top2[1] - top2[0]))
        t = int(np.argmax(lg))
        toks.append(t)
        logits.append(lg)
        seq.append(t)
    return toks, logits, margins


def main():
    for fx in FIXTURES:
        c = dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu",
                 bos_token_id=1, eos_token_id=2, attention_bias=False, mlp_bias=False,
                 torch_dtype=TORCH_DTYPE[fx["dtype"]], **fx["config"])
        rng = np.random.default_rng(fx["seed"])
        w = store(fx, make_weights(c, rng, fx.get("embed_std", 1.0)))
        d = os.path.join(HERE, fx["name"])
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(c, f, indent=2, sort_keys=True)
            f.write("\n")
        inv = inv_freq(c)
        toks, logits, margins = greedy(c, w, fx["prompt"], fx["steps"], inv)
        # Greedy tokens must not hinge on rounding: fp32 engines have to agree.
        assert min(margins) > 1e-3, (fx["name"], margins)
        if c.get("rope_scaling"):
            # The scaling must change the answer, or the fixture would not test it.
            plain = forward(c, w, fx["prompt"], inv_freq(c, scaled=False))
            diff = float(np.max(np.abs(plain - logits[0])))
            assert diff > 1e-2, (fx["name"], "rope scaling has no effect", diff)
        out = dict(prompt=fx["prompt"], tokens=toks, min_margin=min(margins),
                   logits=[[float(f"{v:.9g}") for v in lg] for lg in logits])
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        print(f"{fx['name']}: tokens {toks} min margin {min(margins):.4f}")


if __name__ == "__main__":
    main()
