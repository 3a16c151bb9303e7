#!/usr/bin/env bash
# Runs the candle engine on the GPU host: conformance on cuda, the Rust-only
# timing of the same decode loop (adapter-overhead check), then the runner
# benchmark, for the TinyLlama-1.1B and Llama-3-8B shapes in bf16.
#
#   BIN=dir MODELS=dir OUT=dir scripts/gpu/candle.sh
#
# BIN holds runner, candle and candle-bench (the last two from .gpu/candle.tar.xz,
# built by scripts/build-candle.sh --cuda: tar -xJf .gpu/candle.tar.xz -C "$BIN");
# MODELS holds tinyllama-1.1b and llama-3-8b (runner models synth, bf16). Every step
# runs even if an earlier one failed; the exit status says whether all passed. Prints
# a table last: Rust-only vs runner decode tok/s (same prompt ids, same loop).
set -uo pipefail
: "${BIN:?}" "${MODELS:?}" "${OUT:?}"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
out="$OUT/candle"
mkdir -p "$out"
shapes=(tinyllama-1.1b llama-3-8b)
prompt=128 new=256 warmup=2 iters=5
case="p$prompt-n$new"
failed=()

step() { # step NAME CMD...: run, log to $out/NAME.txt, remember failures
  local name="$1"; shift
  echo "== candle: $name" >&2
  "$@" 2>&1 | tee "$out/$name.txt"
  (( PIPESTATUS[0] == 0 )) || failed+=("$name")
}

step info "$BIN/candle" info
step conformance "$BIN/runner" conformance --bin-dir "$BIN" --device cuda:0 --dtype bf16 candle

# Rust-only timing: the bridge's own decode loop, the runner's prompt ids (seed 1, case name).
for s in "${shapes[@]}"; do
  step "bench-$s" "$BIN/candle-bench" "$MODELS/$s" --device cuda:0 --dtype bf16 --prompt-len $prompt --new $new \
    --warmup $warmup --iters $iters --seed 1 --case "$case"
done

for s in "${shapes[@]}"; do
  cat > "$out/$s.yaml" <<EOF
name: candle-$s
model: $MODELS/$s
device: cuda:0
dtype: bf16
seed: 1
warmup: $warmup
iterations: $iters
launches: 2
engines:
  - {name: candle}
cases:
  - {name: $case, prompt_len: $prompt, max_new_tokens: $new}
timeouts: {start: 10m, stall: 5m, total: 30m}
EOF
  step "runner-$s" "$BIN/runner" bench --bin-dir "$BIN" --config "$out/$s.yaml" --out "$out/results-$s"
done

gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1)"
echo "== candle on ${gpu:-unknown GPU}: decode tok/s, bf16, $case, median (Rust-only: $iters iterations after $warmup warm-up)"
printf '%-16s %14s %14s %8s\n' shape rust_only runner ratio
for s in "${shapes[@]}"; do
  rust="$(grep -m1 '^median_decode_tok_s' "$out/bench-$s.txt" | cut -d' ' -f2)"
  summary="$(ls -d "$out/results-$s"/*/summary.json 2>/dev/null | tail -n1)"
  runner="$(python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
print("%.2f" % d["cases"][0]["results"][0]["metrics"]["decode_tps"]["median"])' "$summary" 2>/dev/null)"
  ratio="$(python3 -c 'import sys; print("%.3f" % (float(sys.argv[2]) / float(sys.argv[1])))' "$rust" "$runner" 2>/dev/null)"
  printf '%-16s %14s %14s %8s\n' "$s" "${rust:-n/a}" "${runner:-n/a}" "${ratio:-n/a}"
done
echo "(ratio = runner / Rust-only; within 0.97..1.03 means the Go adapter and protocol add no measurable overhead)"
if ((${#failed[@]})); then
  echo "candle: failed steps: ${failed[*]}" >&2
  exit 1
fi
