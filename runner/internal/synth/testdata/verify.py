"""Reads a synthesized model directory with the Hugging Face `safetensors` and
`tokenizers` packages and prints what they see as one JSON object, so that
synth's Go tests check the files against the real loaders.

Usage: python3 verify.py MODEL_DIR   (needs numpy, safetensors, tokenizers)
"""
import hashlib
import json
import os
import sys

import numpy as np
from safetensors import safe_open, deserialize
from tokenizers import Tokenizer


def as_f32(dtype, data):
    if dtype == "F32":
        return np.frombuffer(data, dtype="<f4")
    if dtype == "F16":
        return np.frombuffer(data, dtype="<f2").astype(np.float32)
    if dtype == "BF16":
        return (np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    raise ValueError(dtype)


def main(model):
    files = sorted(f for f in os.listdir(model) if f.endswith(".safetensors"))
    out = {"files": files, "tensors": {}}
    index_path = os.path.join(model, "model.safetensors.index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            out["index"] = json.load(f)
    for name in files:
        path = os.path.join(model, name)
        # safe_open runs the library's header validation (offsets tile the
        # data, sizes match shapes, file length matches).
        with safe_open(path, framework="numpy") as f:
            out.setdefault("metadata", {})[name] = f.metadata()
            keys = list(f.keys())
        with open(path, "rb") as f:
            for tname, t in deserialize(f.read()):
                x = as_f32(t["dtype"], t["data"])
                out["tensors"][tname] = {
                    "file": name,
                    "dtype": t["dtype"],
                    "shape": list(t["shape"]),
                    "sha256_f32": hashlib.sha256(x.tobytes()).hexdigest(),
                    "mean": float(x.astype(np.float64).mean()),
                    "std": float(x.astype(np.float64).std()),
                    "finite": bool(np.isfinite(x).all()),
                }
        assert sorted(keys) == sorted(k for k, v in out["tensors"].items() if v["file"] == name)
    tok = Tokenizer.from_file(os.path.join(model, "tokenizer.json"))
    enc = tok.encode("<3> <4>  </s> <%d> word" % (tok.get_vocab_size() - 1))
    out["tokenizer"] = {
        "vocab_size": tok.get_vocab_size(),
        "ids": enc.ids,
        "tokens": enc.tokens,
        "decoded": tok.decode(enc.ids, skip_special_tokens=False),
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
