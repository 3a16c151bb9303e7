"""Writes the GGUF fixtures of the gguf package's tests with gguf-py, an
independent implementation of the format (pip install gguf==0.19.0 numpy):

  dequant.gguf  one tensor per supported type (Q4_0..Q8_0 quantized by gguf-py
                from random floats, k-quants as random blocks with sane f16
                scales) next to "<name>.want": gguf-py's own dequantization of
                it, as F32.
  micro.gguf    a 1-layer Llama (hidden 32, 2 heads, 1 KV head) with Q/K
                permuted as llama.cpp's convert_hf_to_gguf.py permutes them, a
                byte-level BPE vocabulary of 256 bytes + 4 merges + 2 specials;
  micro_hf.f32  the HF (unpermuted) q_proj then k_proj, raw little-endian f32.

Run from this directory: python3 make_fixtures.py
"""
import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import quantize, dequantize

rng = np.random.default_rng(24)

w = gguf.GGUFWriter("dequant.gguf", "test")
for t in (Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0):
    x = rng.standard_normal((2, 256)).astype(np.float32)
    raw = x.astype(np.float16).view(np.uint8) if t == Q.F16 else quantize(x, t)
    w.add_tensor(t.name, raw, raw_dtype=t)
    w.add_tensor(t.name + ".want", dequantize(raw, t).astype(np.float32).reshape(2, 256))
# k-quants: random bytes, then the f16 scale fields set to small finite values
# (byte offsets of d / dmin inside ggml's block_qN_K).
scale_at = {Q.Q2_K: (80, 82), Q.Q3_K: (108,), Q.Q4_K: (0, 2), Q.Q5_K: (0, 2), Q.Q6_K: (208,)}
for t, offs in scale_at.items():
    size = gguf.GGML_QUANT_SIZES[t][1]
    blocks = rng.integers(0, 256, (2, size), dtype=np.uint8)
    for o in offs:
        blocks[:, o:o + 2] = np.array(rng.uniform(0.01, 0.1, 2), dtype=np.float16).view(np.uint8).reshape(2, 2)
    raw = blocks.reshape(1, 2 * size)
    w.add_tensor(t.name, raw, raw_dtype=t)
    w.add_tensor(t.name + ".want", dequantize(raw, t).astype(np.float32).reshape(1, 512))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()


def permute(weights, n_head, n_head_kv):  # convert_hf_to_gguf.py, LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


hidden, heads, kv, inter = 32, 2, 1, 64
hd = hidden // heads
tokens = [bytes([b]).decode("latin-1") for b in range(256)]
# GPT-2's byte-to-unicode table, so that tokens are byte-level strings.
bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
cs, n = bs[:], 0
for b in range(256):
    if b not in bs:
        bs.append(b)
        cs.append(256 + n)
        n += 1
byte_char = dict(zip(bs, map(chr, cs)))
tokens = [byte_char[b] for b in range(256)]
merges = ["h e", "l l", "he ll", "Ġ w"]
tokens += ["he", "ll", "hell", "Ġw", "<|endoftext|>", "<|im_start|>"]
vocab = len(tokens)
m = gguf.GGUFWriter("micro.gguf", "llama")
m.add_context_length(64)
m.add_embedding_length(hidden)
m.add_block_count(1)
m.add_feed_forward_length(inter)
m.add_head_count(heads)
m.add_head_count_kv(kv)
m.add_rope_freq_base(10000.0)
m.add_layer_norm_rms_eps(1e-5)
m.add_rope_dimension_count(hd)
m.add_vocab_size(vocab)
m.add_tokenizer_model("gpt2")
m.add_tokenizer_pre("smollm")
m.add_token_list(tokens)
m.add_token_types([1] * (vocab - 2) + [3, 3])
m.add_token_merges(merges)
m.add_bos_token_id(vocab - 2)
m.add_eos_token_id(vocab - 2)
m.add_add_bos_token(False)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


q, k = f32(hidden, hidden), f32(kv * hd, hidden)
m.add_tensor("token_embd.weight", f32(vocab, hidden))
m.add_tensor("output_norm.weight", f32(hidden))
m.add_tensor("blk.0.attn_norm.weight", f32(hidden))
m.add_tensor("blk.0.attn_q.weight", permute(q, heads, heads))
m.add_tensor("blk.0.attn_k.weight", permute(k, heads, kv))
m.add_tensor("blk.0.attn_v.weight", f32(kv * hd, hidden))
m.add_tensor("blk.0.attn_output.weight", quantize(f32(hidden, hidden), Q.Q8_0), raw_dtype=Q.Q8_0)
m.add_tensor("blk.0.ffn_norm.weight", f32(hidden))
m.add_tensor("blk.0.ffn_gate.weight", f32(inter, hidden))
m.add_tensor("blk.0.ffn_up.weight", f32(inter, hidden))
m.add_tensor("blk.0.ffn_down.weight", f32(hidden, inter))
m.write_header_to_file()
m.write_kv_data_to_file()
m.write_tensors_to_file()
m.close()
np.concatenate([q.ravel(), k.ravel()]).astype("<f4").tofile("micro_hf.f32")
