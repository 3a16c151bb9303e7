#!/usr/bin/env python3
"""Cross-check the numpy fixtures against transformers' LlamaForCausalLM.

Loads every fixture under testdata with transformers in float64 and compares
its logits (teacher-forced on the expected greedy tokens) and its own greedy
tokens with expected.json. Needs torch and transformers, e.g. the venv that
scripts/setup-torch.sh makes:

    "$(scripts/setup-torch.sh)" engines/reference/testdata/check_hf.py
"""
import json
import os
import sys

import torch
from transformers import LlamaForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = ["gqa_untied_f32", "mha_tied_bf16", "llama3_f16_sharded"]


def main():
    worst_all, ok = 0.0, True
    for name in FIXTURES:
        d = os.path.join(HERE, name)
        with open(os.path.join(d, "expected.json")) as f:
            exp = json.load(f)
        model = LlamaForCausalLM.from_pretrained(d, dtype=torch.float64).eval()
        seq = exp["prompt"] + exp["tokens"]
        with torch.no_grad():
            logits = model(torch.tensor([seq])).logits[0]
            p = len(exp["prompt"])
            got = logits[p - 1 : p - 1 + len(exp["tokens"])]
            want = torch.tensor(exp["logits"], dtype=torch.float64)
            rel = ((got - want).abs().max(dim=-1).values / want.abs().max(dim=-1).values.clamp(min=1)).max().item()
            gen = model.generate(torch.tensor([exp["prompt"]]), max_new_tokens=len(exp["tokens"]),
                                 do_sample=False, eos_token_id=None, pad_token_id=0, min_new_tokens=len(exp["tokens"]))
        toks = gen[0, p:].tolist()
        # transformers keeps RoPE's inv_freq and cos/sin in float32 even for a
        # float64 model, hence about 1e-7 rather than float64 round-off.
        good = rel < 1e-5 and toks == exp["tokens"]
        ok &= good
        worst_all = max(worst_all, rel)
        verdict = "match" if toks == exp["tokens"] else f"DIFFER: {toks}, numpy {exp['tokens']}"
        print(f"{name}: transformers vs numpy logits max relative error {rel:.2e}; greedy tokens {verdict}")
    print("OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
