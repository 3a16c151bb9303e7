#!/usr/bin/env bash
# Adapter-overhead check on ONE card: the engine's own decode loop with no Go and
# no protocol (candle-bench, burn-bench, bench.py) against the runner's figure for
# the same bridge code, weights and prompt, interleaved native, runner, native,
# runner, ... so clock and temperature drift hit both sides alike.
#
#   BIN=dir MODELS=dir OUT=dir scripts/gpu/adapter.sh ENGINE SHAPE [ROUNDS]
#
# ENGINE is candle, burn or pytorch (its compiled mode). SHAPE names a model dir
# under $MODELS (bf16, runner models synth). ROUNDS (default 2) pairs are run with
# WARMUP (2) warm-up and ITERS (5) timed iterations each, p128-n256. Writes
# $OUT/adapter/ENGINE-SHAPE.{log,jsonl} and prints one summary line:
#   adapter ENGINE SHAPE card=... native=X runner=Y ratio=Y/X within=yes|no
# NATIVE_MODES (default "plain") adds diagnostic native runs to every round, each
# reported on its own line against the runner: "spin" runs the native loop next
# to one busy-looping process (keeps a second vCPU out of idle, as the runner's
# own process tree does), "pin" pins it to one CPU (taskset -c 1).
# ENGINE_OPTS (e.g. "attention=padded", burn) go into the runner's engine spec
# (burn:attention=padded) and, as --attention, into burn-bench.
# Last, for candle and burn (which print per-iteration rates), the pooled timed iterations
# of all runs per side: ratio of medians with a bootstrap 95% CI.
# mistral.rs runs its check in-process (`mistralrs native`), not here.
set -uo pipefail
: "${BIN:?}" "${MODELS:?}" "${OUT:?}"
engine=${1:?engine} shape=${2:?shape} rounds=${3:-2}
warmup=${WARMUP:-2} iters=${ITERS:-5} prompt=128 new=256 case=p128-n256
model=$MODELS/$shape
out=$OUT/adapter
mkdir -p "$out"
log=$out/$engine-$shape.log jsonl=$out/$engine-$shape.jsonl
: > "$jsonl"
card=$(nvidia-smi --query-gpu=name,uuid --format=csv,noheader 2>/dev/null | head -n1)
spec=$engine native_flags=()
[[ $engine == pytorch ]] && spec="pytorch:mode=compiled"
if [[ -n ${ENGINE_OPTS:-} ]]; then
  spec="$spec:$ENGINE_OPTS"
  [[ $engine == burn && $ENGINE_OPTS =~ attention=([a-z]+) ]] && native_flags=(--attention "${BASH_REMATCH[1]}")
fi

native() { # native MODE: prints the median decode tok/s of one native run
  local spinner= wrap=()
  case ${1:-plain} in
  spin) (while :; do :; done) & spinner=$! ;;
  pin) wrap=(taskset -c 1) ;;
  esac
  echo "== native ${1:-plain} ($(date -u +%H:%M:%S))" >>"$log"
  native_run "${wrap[@]}"
  [[ -n $spinner ]] && { kill "$spinner"; wait "$spinner" 2>/dev/null; }
  return 0
}
native_run() { # [WRAPPER...]: the engine's own loop
  case $engine in
  candle)
    "$@" "$BIN/candle-bench" "$model" --device cuda:0 --dtype bf16 --prompt-len $prompt --new $new \
      --warmup "$warmup" --iters "$iters" --seed 1 --case $case 2>>"$log" | tee -a "$log" |
      sed -nE 's/^median_decode_tok_s ([0-9.]+).*/\1/p'
    ;;
  burn)
    "$@" "$BIN/burn-bench" --model "$model" --device cuda:0 --dtype bf16 --prompt-len $prompt --new $new \
      --warmup "$warmup" --iters "$iters" --seed 1 --case $case "${native_flags[@]}" 2>>"$log" | tee -a "$log" |
      sed -nE 's/.*"summary":true.*"median_decode_tok_s":([0-9.]+).*/\1/p'
    ;;
  pytorch)
    "$@" "${CIB_PYTHON:-python3}" engines/pytorch/bench/bench.py run --model "$model" --device cuda:0 --dtype bf16 \
      --prompt $prompt --new $new --warmup "$warmup" --iters "$iters" 2>>"$log" | tee -a "$log" |
      sed -nE 's/.*"decode_tok_s": ([0-9.]+).*/\1/p'
    ;;
  *) echo "adapter.sh: engine $engine has no native loop here" >&2; exit 64 ;;
  esac
}

# The runner's default config is the embedded smoke case; point it at p128-n256.
cfg=$out/$engine-$shape.yaml
cat > "$cfg" <<EOF
name: adapter-$engine-$shape
model: $model
device: cuda:0
dtype: bf16
seed: 1
engines:
  - {name: $engine}
cases:
  - {name: $case, prompt_len: $prompt, max_new_tokens: $new}
timeouts: {start: 15m, stall: 5m, total: 30m}
EOF
runner() { # prints the runner's median decode tok/s of one launch
  local dir=$out/runs-$engine-$shape-$1
  "$BIN/runner" bench --bin-dir "$BIN" --config "$cfg" --engines "$spec" \
    --launches 1 --warmup "$warmup" --iterations "$iters" --idle-timeout 10s --out "$dir" -q >>"$log" 2>&1
  local sum
  sum=$(ls -d "$dir"/*/summary.json 2>/dev/null | tail -n1)
  [[ -n $sum ]] && python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
print("%.3f" % d["cases"][0]["results"][0]["metrics"]["decode_tps"]["median"])' "$sum" 2>>"$log"
}

read -r -a modes <<<"${NATIVE_MODES:-plain}"
for ((r = 1; r <= rounds; r++)); do
  line="{\"engine\":\"$engine\",\"shape\":\"$shape\",\"round\":$r"
  for m in "${modes[@]}"; do
    n=$(native "$m" | tail -n1)
    key=native_tok_s; [[ $m == plain ]] || key=native_${m}_tok_s
    line+=",\"$key\":${n:-null}"
  done
  x=$(runner "$r" | tail -n1)
  echo "$line,\"runner_tok_s\":${x:-null}}" | tee -a "$jsonl"
done
python3 - "$engine" "$shape" "$card" "$jsonl" "$log" "$out" <<'PY'
import glob, json, random, re, statistics, sys
engine, shape, card, path, log, out = sys.argv[1:7]
rows = [json.loads(l) for l in open(path) if l.strip()]
runs = {k: [r[k] for r in rows if r.get(k) is not None] for k in rows[0] if k.endswith("_tok_s")} if rows else {}
rs, ns = runs.get("runner_tok_s", []), runs.get("native_tok_s", [])
if not ns or not rs:
    print(f"adapter {engine} {shape} card={card!r} FAILED: native {len(ns)} runs, runner {len(rs)} runs")
    sys.exit(1)
r = statistics.median(rs)
for key, vals in runs.items():
    if key == "runner_tok_s" or not vals:
        continue
    n = statistics.median(vals)
    ratio = r / n
    label = "native" if key == "native_tok_s" else key[:-len("_tok_s")]
    print(f"adapter {engine} {shape} card={card!r} {label}={n:.2f} runner={r:.2f} ratio={ratio:.4f} "
          f"within={'yes' if abs(ratio - 1) <= 0.03 else 'no'} (medians of {len(vals)}+{len(rs)} interleaved runs; "
          f"{label} runs {', '.join(f'{v:.1f}' for v in vals)}; runner {', '.join(f'{v:.1f}' for v in rs)})")

# Pooled timed iterations of every run, per side: the ratio of medians with a
# bootstrap 95% CI says how well the runs resolve ±3% (candle and burn print
# per-iteration rates; the runner's come from its runs.jsonl).
native_its, mode = {}, None
for line in open(log, errors="replace"):
    m = re.match(r"== native (\w+)", line)
    if m:
        mode = m.group(1)
        continue
    m = re.match(r"iter \d+: .*decode ([\d.]+) tok/s", line)  # candle-bench
    if m is None and '"warmup":false' in line:  # burn-bench
        m = re.search(r'"decode_tok_s":([\d.]+)', line)
    if m and mode:
        native_its.setdefault(mode, []).append(float(m.group(1)))
runner_its = []
for f in sorted(glob.glob(f"{out}/runs-{engine}-{shape}-*/*/runs.jsonl")):
    for l in open(f):
        for it in json.loads(l).get("iterations", []):
            raw = it["raw"]
            t = raw.get("token_ns") or []
            if not raw.get("warmup") and len(t) > 1 and t[-1] > t[0]:
                runner_its.append((len(t) - 1) / ((t[-1] - t[0]) / 1e9))
rng = random.Random(1)
def boot(a, b, n=5000):
    qs = sorted(statistics.median([rng.choice(b) for _ in b]) / statistics.median([rng.choice(a) for _ in a]) for _ in range(n))
    return qs[int(0.025 * n)], qs[int(0.975 * n)]
for mode, its in native_its.items():
    if len(its) < 2 or len(runner_its) < 2:
        continue
    n, x = statistics.median(its), statistics.median(runner_its)
    lo, hi = boot(its, runner_its)
    print(f"adapter {engine} {shape} pooled iterations: native {mode} {n:.2f} (n={len(its)}) runner {x:.2f} (n={len(runner_its)}) "
          f"ratio={x / n:.4f} 95% CI [{lo:.4f}, {hi:.4f}]")
PY
