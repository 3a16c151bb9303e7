#!/usr/bin/env bash
# Checks NVML telemetry on the GPU host (issue 4): the environment record, the
# bandwidth probe, the sampler against the real NVML (cost per sample, energy
# counter, process-tree memory, idle wait) and, with the pytorch engine, decode
# tok/s with the sampler on vs off.
#
#   BIN=dir-with-runner MODELS=dir-with-synth-models OUT=results-dir scripts/gpu/telemetry.sh
#
# BIN holds runner and, optionally, telemetry.test (built on the dev machine:
#   CGO_ENABLED=1 go test -c -o .gpu/bin/telemetry.test ./runner/internal/telemetry)
# and pytorch (for the on/off benchmark, skipped without it or with
# TELEMETRY_BENCH=0). MODELS holds tinyllama-1.1b. Builds nothing.
set -euo pipefail
: "${BIN:?}" "${OUT:?}"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
out="$OUT/telemetry"
mkdir -p "$out"
export CIB_CACHE="$out/cache" # the probe's cache stays with the results

echo "== runner gpu info"
"$BIN/runner" gpu info | tee "$out/gpu-info.json"
nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,power.limit,persistence_mode,clocks.max.memory \
  --format=csv | tee "$out/nvidia-smi.csv"

echo "== runner gpu probe"
"$BIN/runner" gpu probe --device 0 --refresh 2>&1 | tee "$out/probe.txt" || echo "PROBE FAILED"

if [[ -x "$BIN/telemetry.test" ]]; then
  echo "== telemetry tests on the real NVML"
  CIB_GPU_TEST=1 CIB_GPU_OUT="$out" "$BIN/telemetry.test" -test.run '^TestGPU' -test.v -test.timeout 8m \
    2>&1 | tee "$out/gpu-test.log" || echo "TELEMETRY TESTS FAILED"
fi

if [[ "${TELEMETRY_BENCH:-1}" == 1 && -x "$BIN/pytorch" && -d "${MODELS:-}/tinyllama-1.1b" ]]; then
  echo "== pytorch decode, sampler off/on/on/off"
  cat > "$out/decode.yaml" <<EOF
name: telemetry-onoff
model: $MODELS/tinyllama-1.1b
device: cuda:0
dtype: bf16
seed: 1
warmup: 3
iterations: 10
launches: 2
cases:
  - {name: p128-n256, prompt_len: 128, max_new_tokens: 256}
timeouts: {start: 5m, stall: 2m, total: 15m}
EOF
  k=0
  for mode in off on on off; do
    k=$((k + 1))
    flags=(--telemetry-interval 10ms)
    [[ $mode == off ]] && flags=(--no-telemetry)
    "$BIN/runner" bench --config "$out/decode.yaml" --engines pytorch --bin-dir "$BIN" \
      --out "$out/bench-$k-$mode" -q "${flags[@]}" 2>&1 | tee "$out/bench-$k-$mode.txt"
  done
  "$BIN/runner" compare "$out"/bench-1-off/*/ "$out"/bench-2-on/*/ | tee "$out/compare-1.txt"
  "$BIN/runner" compare "$out"/bench-4-off/*/ "$out"/bench-3-on/*/ | tee "$out/compare-2.txt"
fi

echo "== telemetry summary"
cat "$out/summary.txt" 2>/dev/null || echo "no summary (telemetry.test not in \$BIN?)"
