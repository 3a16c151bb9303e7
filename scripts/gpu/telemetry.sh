#!/usr/bin/env bash
# Checks NVML telemetry on the GPU host (issue 4): the environment record, the
# bandwidth probe, the sampler against the real NVML (cost per sample, energy
# counter, process-tree memory, idle wait) and the sampler's observer effect:
# decode tok/s and TTFT of TELEMETRY_ENGINES (default pytorch) with the sampler
# off and in each mode of TELEMETRY_MODES (default "off 10ms 100ms"; pDURATION
# adds --power-interval DURATION): `runner observer`.
#
#   BIN=dir-with-runner MODELS=dir-with-synth-models OUT=results-dir scripts/gpu/telemetry.sh
#
# BIN holds runner and, optionally, telemetry.test (built on the dev machine:
#   CGO_ENABLED=1 go test -c -o .gpu/bin/telemetry.test ./runner/internal/telemetry)
# and the engines (for the observer check, skipped with TELEMETRY_BENCH=0).
# MODELS holds tinyllama-1.1b. Builds nothing.
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

if [[ "${TELEMETRY_TESTS:-1}" == 1 ]]; then
  echo "== runner gpu probe"
  "$BIN/runner" gpu probe --device 0 --refresh 2>&1 | tee "$out/probe.txt" || echo "PROBE FAILED"

  if [[ -x "$BIN/telemetry.test" ]]; then
    echo "== telemetry tests on the real NVML"
    CIB_GPU_TEST=1 CIB_GPU_OUT="$out" "$BIN/telemetry.test" -test.run '^TestGPU' -test.v -test.timeout 8m \
      2>&1 | tee "$out/gpu-test.log" || echo "TELEMETRY TESTS FAILED"
  fi
fi

if [[ "${TELEMETRY_BENCH:-1}" == 1 && -d "${MODELS:-}/tinyllama-1.1b" ]]; then
  # The sampler's observer effect (`runner observer`): the same engine with the sampler off and in each mode of
  # TELEMETRY_MODES, one launch per mode per round, the order rotated every round, ratios to "off" paired by round.
  # (The pinCPULIST mode of 2026-12-03 — taskset around the whole launch — went with the move into the runner.)
  modes=$(echo ${TELEMETRY_MODES:-off 10ms 100ms} | tr ' ' ',')
  for e in ${TELEMETRY_ENGINES:-pytorch}; do
    [[ -x "$BIN/$e" ]] || { echo "observer: no $e in the bundle"; continue; }
    "$BIN/runner" observer "$e" --model "$MODELS/tinyllama-1.1b" --bin-dir "$BIN" --modes "$modes" \
      --rounds "${TELEMETRY_ROUNDS:-3}" --warmup "${TELEMETRY_WARMUP:-2}" --iterations "${TELEMETRY_ITERS:-5}" \
      --out "$out/observer" 2>&1 | tee "$out/observer-$e-$(date -u +%H%M%S).txt" || echo "observer $e: exit ${PIPESTATUS[0]} (4: a mode outside ±3%)"
  done
fi

echo "== telemetry summary"
cat "$out/summary.txt" 2>/dev/null || echo "no summary (telemetry.test not in \$BIN?)"
