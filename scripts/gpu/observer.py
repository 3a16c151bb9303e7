#!/usr/bin/env python3
"""Summarises the sampler observer check of scripts/gpu/telemetry.sh.

    observer.py DIR     # DIR/rR-MODE/<run>/runs.jsonl, one launch each

Per launch: the median over timed iterations of decode tok/s and TTFT (the
runner's own metrics in runs.jsonl). Per mode: the geometric mean over rounds,
and the ratio to mode "off" paired by round with a Student-t 95% interval on
the log ratios (the adapter check's method). Standard library only, so it runs
on the GPU host's python3 as is.
"""
import glob
import json
import math
import os
import statistics
import sys

# Two-sided 95% Student-t quantiles by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def launch(path):
    with open(path) as f:
        rec = json.loads(f.readline())
    dec, ttft = [], []
    for it in rec.get("iterations") or []:
        if it["raw"].get("warmup"):
            continue
        m = it["metrics"]
        dec.append(m["decode_tps"])
        ttft.append(m["ttft_ns"] / 1e6)
    if not dec:
        return None
    busy = (rec.get("telemetry") or {}).get("sampler_busy_pct")
    return statistics.median(dec), statistics.median(ttft), busy


def main(root):
    runs = {}  # mode -> round -> (decode, ttft)
    for d in sorted(glob.glob(os.path.join(root, "r*-*"))):
        rnd, mode = os.path.basename(d).split("-", 1)
        files = glob.glob(os.path.join(d, "*", "runs.jsonl"))
        if len(files) > 1:
            print(f"{os.path.basename(d)}: {len(files)} runs, expected one: not used")
            continue
        got = launch(files[0]) if files else None
        if got is None:
            print(f"{os.path.basename(d)}: no timed iterations")
            continue
        runs.setdefault(mode, {})[int(rnd[1:])] = got
    if "off" not in runs:
        print("no 'off' runs: nothing to compare")
        return 1
    print(f"{os.path.basename(root)}: median of timed iterations per launch, one launch per mode per round")
    for mode in sorted(runs, key=lambda m: (m != "off", m)):
        rs = runs[mode]
        line = f"  {mode:>6}: " + "  ".join(
            f"r{r} {d:.1f} tok/s {t:.2f} ms" + (f" ({b:.1f}% busy)" if b is not None else "") for r, (d, t, b) in sorted(rs.items()))
        print(line)
    for mode in runs:
        if mode == "off":
            continue
        for k, name in ((0, "decode tok/s"), (1, "TTFT ms")):
            logs = [math.log(runs[mode][r][k] / runs["off"][r][k]) for r in runs[mode] if r in runs["off"]]
            if len(logs) < 2:
                continue
            m = statistics.mean(logs)
            h = T95.get(len(logs) - 1, 1.96) * statistics.stdev(logs) / math.sqrt(len(logs))
            print(f"  {name} {mode}/off = {math.exp(m):.4f} (95% CI {math.exp(m - h):.4f}–{math.exp(m + h):.4f}, paired over {len(logs)} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
