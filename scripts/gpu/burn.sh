#!/usr/bin/env bash
# Runs the Burn engine on the GPU host: conformance on cuda, the Rust-only timing
# of the same decode loop (adapter-overhead check), then the runner benchmark, for
# the TinyLlama-1.1B and Llama-3-8B shapes in bf16.
#
#   BIN=dir MODELS=dir OUT=dir scripts/gpu/burn.sh
#
# BIN holds runner, burn and burn-bench (burn + burn-bench come from .gpu/burn.tar.xz,
# built by scripts/build-burn.sh --cuda); MODELS holds tinyllama-1.1b and llama-3-8b
# (runner models synth, bf16). Prints a table last.
#
# Warm-up: cubecl JIT-compiles every kernel with NVRTC on first use and autotunes
# matmul/attention per shape bucket, so the first iteration of a launch is much
# slower. Every launch here runs 3 warm-up iterations of the exact timed case before
# timing; burn-bench prints the warm-up iterations too, so the cost is on record.
#
# Knobs: BURN_SHAPES (both), BURN_WARMUP (3), BURN_ITERS (5), BURN_LAUNCHES (2),
# BURN_ATTENTION (grouped|padded|fused), BURN_TIMEOUT (600 s per burn-bench run),
# BURN_CONFORMANCE=0, BURN_FUSED=0 (skip the fused-attention burn-bench run).
set -euo pipefail
: "${BIN:?}" "${MODELS:?}" "${OUT:?}"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# cubecl-cuda hands NVRTC the CUDA headers from $CUDA_PATH/include.
export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
out="$OUT/burn"
mkdir -p "$out"
read -r -a shapes <<<"${BURN_SHAPES:-tinyllama-1.1b llama-3-8b}"
prompt=128 new=256 warmup=${BURN_WARMUP:-3} iters=${BURN_ITERS:-5} attention=${BURN_ATTENTION:-grouped}
limit=${BURN_TIMEOUT:-600} # seconds per burn-bench run

"$BIN/burn" info | tee "$out/info.json"
if [[ ${BURN_CONFORMANCE:-1} == 1 ]]; then
  "$BIN/runner" conformance burn --bin-dir "$BIN" --device cuda:0 --dtype bf16 2>&1 | tee "$out/conformance.txt" || true
fi

# Rust-only timing: same bridge code, same prompt ids as the runner (seed 1, case name).
for s in "${shapes[@]}"; do
  timeout "$limit" "$BIN/burn-bench" --model "$MODELS/$s" --device cuda:0 --dtype bf16 --prompt-len $prompt --new $new \
    --warmup $warmup --iters $iters --seed 1 --case "p$prompt-n$new" --attention "$attention" 2>&1 | tee "$out/bench-$s.jsonl" || true
done
# The fused-attention variant, Rust-only, on the small shape.
if [[ ${BURN_FUSED:-1} == 1 ]]; then
  timeout "$limit" "$BIN/burn-bench" --model "$MODELS/tinyllama-1.1b" --device cuda:0 --dtype bf16 --prompt-len $prompt --new $new \
    --warmup $warmup --iters $iters --attention fused 2>&1 | tee "$out/bench-tinyllama-1.1b-fused.jsonl" || true
fi

for s in "${shapes[@]}"; do
  cat > "$out/$s.yaml" <<EOF
name: burn-$s
model: $MODELS/$s
device: cuda:0
dtype: bf16
seed: 1
warmup: $warmup
iterations: $iters
launches: ${BURN_LAUNCHES:-2}
engines:
  - {name: burn, options: {attention: $attention}}
cases:
  - {name: p$prompt-n$new, prompt_len: $prompt, max_new_tokens: $new}
timeouts: {start: 10m, stall: 5m, total: 30m}
EOF
  "$BIN/runner" bench --bin-dir "$BIN" --config "$out/$s.yaml" --out "$out/results" 2>&1 | tee "$out/runner-$s.txt" || true
done

echo "== burn on $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1): Rust-only (burn-bench), bf16, p$prompt n$new, median of $iters after $warmup warm-up"
printf '%-22s %14s %12s %18s\n' shape decode_tok_s ttft_ms first_warmup_ttft_ms
for f in "$out"/bench-*.jsonl; do
  s=$(basename "$f" .jsonl); s=${s#bench-}
  sum=$(grep '"summary"' "$f" || true)
  w0=$(grep '"iteration":0,' "$f" | sed -E 's/.*"ttft_ms":([0-9.]+).*/\1/' || true)
  tps=$(sed -E 's/.*"median_decode_tok_s":([0-9.]+).*/\1/' <<<"$sum")
  ttft=$(sed -E 's/.*"median_ttft_ms":([0-9.]+).*/\1/' <<<"$sum")
  printf '%-22s %14s %12s %18s\n' "$s" "${tps:-fail}" "${ttft:-fail}" "${w0:-?}"
done
echo "(the runner's decode tok/s is in $out/runner-*.txt; adapter overhead check: within 3% of the grouped rows above)"
