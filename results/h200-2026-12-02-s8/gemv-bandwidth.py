#!/usr/bin/env python3
"""gemv-bandwidth.py: where pytorch compiled's decode step goes on the Llama-3-8B shape, kernel by kernel.

Joins the CUPTI profile a `runner bench --profile kernels` run recorded (runs.jsonl: per-token time and launches of
each decode kernel, full names) with the Inductor output code of the same compilation (the `call()` that launches
every kernel with its xnumel and rnumel): a reduction kernel with xnumel > 1 is an M=1 matmul (GEMV) over an
xnumel x rnumel bf16 weight, so its bytes, and from the profile its bandwidth, follow.

    gemv-bandwidth.py RUNS.JSONL OUTPUT_CODE.py [--probe GBPS]
"""
import argparse
import json
import re
import sys

# Which weight an xnumel x rnumel GEMV reads, on the Llama-3-8B shape.
WEIGHTS = {(6144, 4096): "qkv", (4096, 4096): "wo", (28672, 4096): "gate+up", (4096, 14336): "down",
           (128256, 4096): "lm_head"}


def launches(code):
    """launches maps each Triton kernel to the set of (xnumel, rnumel) or (numel,) it is launched with."""
    out = {}
    for m in re.finditer(r"(triton_\w+)\.run\(([^)]*)\)", code):
        nums = [int(a) for a in (x.strip() for x in m.group(2).split(",")) if a.isdigit()]
        out.setdefault(m.group(1), set()).add(tuple(nums))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs")
    p.add_argument("code")
    p.add_argument("--probe", type=float, default=4247.0, help="measured device-to-device GB/s (runner gpu probe)")
    a = p.parse_args()
    shapes = launches(open(a.code).read())
    for line in open(a.runs):
        r = json.loads(line)
        if not r.get("profiled"):
            continue
        d = r["profile"]["cases"][0]["decode"]
        steps = d["steps"]
        print(f"## {r['engine']}: busy {d['busy_ns'] / steps / 1e3:.0f} µs, wall {d['wall_ns'] / steps / 1e3:.0f} µs a token, "
              f"{d['kernels'] / steps:.0f} kernels\n")
        print("| kernel | what | per token | µs each | µs a token | GB/s | % of probe |")
        print("|---|---|---|---|---|---|---|")
        by_what = {}
        for k in d["top"]:
            name = k.get("example") or k["name"]
            us_tok, per_tok = k["ns"] / steps / 1e3, k["count"] / steps
            each = us_tok / per_tok
            what, gbs = "", None
            if name in shapes:
                dims = sorted(shapes[name])
                if len(dims) == 1 and len(dims[0]) == 2 and dims[0][0] > 1:
                    x, rn = dims[0]
                    what = WEIGHTS.get((x, rn), f"{x}x{rn}")
                    gbs = x * rn * 2 / (each * 1e-6) / 1e9
                elif len(dims) == 1 and len(dims[0]) == 2:
                    what = "norm (1 row)"
                else:
                    what = "pointwise"
            elif name.startswith("cudnn") or "sdpa" in name:
                what = "attention (cuDNN SDPA)"
            elif name == "other":
                what = "the rest"
            by_what[what] = by_what.get(what, 0) + us_tok
            short = name if len(name) <= 60 else name[:40] + "…" + name[-18:]
            print(f"| `{short}` | {what} | {per_tok:.2f} | {each:.2f} | {us_tok:.1f} | "
                  f"{'' if gbs is None else f'{gbs:.0f}'} | {'' if gbs is None else f'{100 * gbs / a.probe:.0f}%'} |")
        print("\nµs a token by what: " + ", ".join(f"{w or '?'} {v:.0f}" for w, v in sorted(by_what.items(), key=lambda kv: -kv[1])))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
