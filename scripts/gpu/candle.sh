#!/usr/bin/env bash
# Runs the candle engine on the GPU host: conformance on cuda, the Rust-only
# timing of the same decode loop (adapter-overhead check), then the runner
# benchmark, for the TinyLlama-1.1B and Llama-3-8B shapes in bf16.
#
#   BIN=dir-with-runner-candle-candle-bench MODELS=dir-with-synth-models OUT=results-dir scripts/gpu/candle.sh
#
# BIN holds runner, candle and candle-bench (from .gpu/candle.tar.zst); MODELS holds
# tinyllama-1.1b and llama-3-8b (runner models synth, bf16). Prints a table last.
set -euo pipefail
: "${BIN:?}" "${MODELS:?}" "${OUT:?}"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
out="$OUT/candle"
mkdir -p "$out"
shapes=(tinyllama-1.1b llama-3-8b)
prompt=128 new=256

"$BIN/candle" info | tee "$out/info.json"
"$BIN/runner" conformance --bin-dir "$BIN" --device cuda:0 --dtype bf16 candle 2>&1 | tee "$out/conformance.txt"

for s in "${shapes[@]}"; do
  "$BIN/candle-bench" "$MODELS/$s" --device cuda:0 --dtype bf16 --prompt-len "$prompt" --new "$new" \
    --warmup 2 --iters 5 2>&1 | tee "$out/bench-$s.txt"
done

for s in "${shapes[@]}"; do
  cat > "$out/$s.yaml" <<EOF
name: candle-$s
model: $MODELS/$s
device: cuda:0
dtype: bf16
seed: 1
warmup: 2
iterations: 5
launches: 2
engines:
  - {name: candle}
cases:
  - {name: p$prompt-n$new, prompt_len: $prompt, max_new_tokens: $new}
timeouts: {start: 5m, stall: 2m, total: 20m}
EOF
  "$BIN/runner" bench --bin-dir "$BIN" --config "$out/$s.yaml" --out "$out/results" 2>&1 | tee "$out/runner-$s.txt"
done

echo "== candle on $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1): Rust-only decode tok/s (median of 5, p$prompt n$new, bf16)"
for s in "${shapes[@]}"; do
  printf '%-16s %s\n' "$s" "$(grep '^median_decode_tok_s' "$out/bench-$s.txt" | cut -d' ' -f2)"
done
echo "(compare with the runner's decode tok/s in $out/runner-*.txt; the runner figure should be within 3%)"
