"""Writes the fixtures of ggufw's tests with implementations independent of
ggufw (pip install gguf==0.19.0 numpy==2.4.6; gcc):

  quant_in.f32      32 blocks of 256 float32 values of varied shapes (normal
                    at many scales, zeros, constants, positive only, tiny,
                    large, sparse outliers, exact .5 ties).
  quant_q8_0.bin    gguf-py's Q8_0 quantization of them (quants.py, bit-exact
                    with ggml's quantize_row_q8_0_ref).
  quant_q4_k.bin    ggml's quantize_row_q4_K_ref (C, copied verbatim into
                    q4k_ref.c, built with -ffp-contract=off) of them; gguf-py
                    has no Q4_K quantizer.
  gguf_py.json      what gguf-py's GGUFReader sees in ggufw's conversion of
                    the fixture model (ggufw_test.go's microSpec) to every
                    type: each file's sha256, its metadata (type, value), and
                    per tensor the name, shape, type and the error of gguf-py's
                    dequantization against the HF checkpoint, with q_proj and
                    k_proj permuted as convert_hf_to_gguf.py's
                    LlamaModel.permute does and rope_freqs computed from the
                    llama3 formula of LlamaModel.generate_extra_tensors.

Run from the ggufw directory: python3 testdata/make_fixtures.py
"""
import hashlib
import json
import math
import os
import struct
import subprocess
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import quantize, dequantize

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(15)

# --- quantizer vectors -------------------------------------------------------
blocks = []
for scale in (1e-3, 0.02, 0.1, 1.0, 7.5, 300.0):
    blocks.append(rng.standard_normal(256) * scale)
blocks.append(np.zeros(256))
blocks.append(np.full(256, 0.25))
blocks.append(rng.uniform(0.5, 2.0, 256))            # all positive: min clamps to 0
blocks.append(-rng.uniform(0.5, 2.0, 256))           # all negative
blocks.append(rng.standard_normal(256) * 1e-6)      # scales below f16's normal range
blocks.append(rng.standard_normal(256) * 1e4)
b = rng.standard_normal(256) * 0.01
b[rng.integers(0, 256, 5)] *= 40                    # sparse outliers
blocks.append(b)
blocks.append(np.round(rng.uniform(-127, 127, 256)) / 2 * (1 / 127))  # q8_0 .5 ties
b = np.zeros(256)
b[::32] = 1.0                                       # one value per 32-block
blocks.append(b)
b = rng.standard_normal(256)
b[:32] = 0                                          # a zero sub-block
blocks.append(b)
while len(blocks) < 32:
    blocks.append(rng.standard_normal(256) * rng.uniform(0.001, 2) + rng.uniform(-0.5, 0.5))
x = np.concatenate(blocks).astype(np.float32)
x.tofile(os.path.join(here, "quant_in.f32"))
quantize(x.reshape(-1, 256), Q.Q8_0).tofile(os.path.join(here, "quant_q8_0.bin"))
with tempfile.TemporaryDirectory() as tmp:
    exe = os.path.join(tmp, "q4k_ref")
    subprocess.run(["gcc", "-O2", "-ffp-contract=off", "-o", exe, os.path.join(here, "q4k_ref.c"), "-lm"], check=True)
    q4k = subprocess.run([exe], input=x.tobytes(), capture_output=True, check=True).stdout
with open(os.path.join(here, "quant_q4_k.bin"), "wb") as f:
    f.write(q4k)
assert len(q4k) == len(x) // 256 * 144
# gguf-py can dequantize Q4_K: the C output must decode close to the input.
err = np.abs(dequantize(np.frombuffer(q4k, np.uint8).reshape(-1, 144), Q.Q4_K).reshape(-1) - x)
assert err.max() <= np.abs(x).max() / 10, err.max()


# --- gguf-py reading ggufw's conversions --------------------------------------
def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        raw = np.frombuffer(data[a:b], np.uint8)
        if e["dtype"] == "BF16":
            v = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif e["dtype"] == "F16":
            v = raw.view(np.float16).astype(np.float32)
        else:
            v = raw.view(np.float32)
        out[name] = v.reshape(e["shape"])
    return out


def permute(weights, n_head, n_head_kv):  # convert_hf_to_gguf.py, LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def llama3_rope_freqs(cfg):  # LlamaModel.generate_extra_tensors, in numpy float32
    rs = cfg["rope_scaling"]
    base, dim = cfg["rope_theta"], cfg["head_dim"]
    freqs = 1.0 / (np.float32(base) ** (np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim)))
    factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    lo_wave, hi_wave = old / lo, old / hi
    out = []
    for freq in freqs:
        wave = 2 * math.pi / freq
        if wave < hi_wave:
            out.append(1)
        elif wave > lo_wave:
            out.append(factor)
        else:
            smooth = (old / wave - lo) / (hi - lo)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


HF = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
      "output.weight": "lm_head.weight"}
BLK = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
       "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
       "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def value(field):
    t = field.types
    name = t[0].name if len(t) == 1 else "ARRAY[%s]" % t[1].name
    v = field.contents()
    if isinstance(v, float):
        v = float(v)
    return [name, v]


result = {}
with tempfile.TemporaryDirectory() as tmp:
    subprocess.run(["go", "test", "-count=1", "-run", "^TestGGUFPy$", ".", "-args", "-fixtures", tmp], check=True,
                   cwd=os.path.dirname(here))
    cfg = json.load(open(os.path.join(tmp, "hf", "config.json")))
    src = read_safetensors(os.path.join(tmp, "hf", "model.safetensors"))
    for typ in ("f32", "f16", "bf16", "q8_0", "q4_k"):
        name = "micro-%s.gguf" % typ
        path = os.path.join(tmp, name)
        r = gguf.GGUFReader(path)
        meta = {k: value(f) for k, f in r.fields.items() if not k.startswith("GGUF.")}
        tensors = []
        for t in r.tensors:
            got = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
            if t.name == "rope_freqs.weight":
                want = llama3_rope_freqs(cfg)
            else:
                hf, kind = HF.get(t.name), None
                if hf is None:
                    _, layer, kind, _ = t.name.split(".")
                    hf = "model.layers.%s.%s.weight" % (layer, BLK[kind])
                want = src[hf]
                if kind == "attn_q":
                    want = permute(want, cfg["num_attention_heads"], cfg["num_attention_heads"])
                elif kind == "attn_k":
                    want = permute(want, cfg["num_attention_heads"], cfg["num_key_value_heads"])
                want = want.reshape(-1)
            d = got.astype(np.float64) - want.astype(np.float64)
            tensors.append({
                "name": t.name, "shape": [int(s) for s in t.shape], "type": t.tensor_type.name,
                "max_abs_err": float(np.abs(d).max()),
                "rel_rms_err": float(np.sqrt((d * d).sum() / (want.astype(np.float64) ** 2).sum())),
            })
        result[name] = {"sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(), "metadata": meta, "tensors": tensors}
with open(os.path.join(here, "gguf_py.json"), "w") as f:
    json.dump(result, f, indent=1, ensure_ascii=False)
    f.write("\n")
