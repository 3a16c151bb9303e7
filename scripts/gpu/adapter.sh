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
spec=$engine
[[ $engine == pytorch ]] && spec="pytorch:mode=compiled"

native() { # prints the median decode tok/s of one native run
  case $engine in
  candle)
    "$BIN/candle-bench" "$model" --device cuda:0 --dtype bf16 --prompt-len $prompt --new $new \
      --warmup "$warmup" --iters "$iters" --seed 1 --case $case 2>>"$log" | tee -a "$log" |
      sed -nE 's/^median_decode_tok_s ([0-9.]+).*/\1/p'
    ;;
  burn)
    "$BIN/burn-bench" --model "$model" --device cuda:0 --dtype bf16 --prompt-len $prompt --new $new \
      --warmup "$warmup" --iters "$iters" --seed 1 --case $case 2>>"$log" | tee -a "$log" |
      sed -nE 's/.*"summary":true.*"median_decode_tok_s":([0-9.]+).*/\1/p'
    ;;
  pytorch)
    "${CIB_PYTHON:-python3}" engines/pytorch/bench/bench.py run --model "$model" --device cuda:0 --dtype bf16 \
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

ns=() rs=()
for ((r = 1; r <= rounds; r++)); do
  n=$(native | tail -n1) x=$(runner "$r" | tail -n1)
  echo "{\"engine\":\"$engine\",\"shape\":\"$shape\",\"round\":$r,\"native_tok_s\":${n:-null},\"runner_tok_s\":${x:-null}}" | tee -a "$jsonl"
  [[ -n $n ]] && ns+=("$n")
  [[ -n $x ]] && rs+=("$x")
done
python3 - "$engine" "$shape" "$card" "${#ns[@]}" "${ns[@]}" "${rs[@]}" <<'PY'
import statistics, sys
engine, shape, card, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
vals = [float(v) for v in sys.argv[5:]]
ns, rs = vals[:k], vals[k:]
if not ns or not rs:
    print(f"adapter {engine} {shape} card={card!r} FAILED: native {len(ns)} runs, runner {len(rs)} runs")
    sys.exit(1)
n, r = statistics.median(ns), statistics.median(rs)
ratio = r / n
print(f"adapter {engine} {shape} card={card!r} native={n:.2f} runner={r:.2f} ratio={ratio:.4f} "
      f"within={'yes' if abs(ratio - 1) <= 0.03 else 'no'} (medians of {len(ns)}+{len(rs)} interleaved runs)")
PY
