#!/usr/bin/env bash
# Checks NVML telemetry on the GPU host (issue 4): the environment record, the
# bandwidth probe, the sampler against the real NVML (cost per sample, energy
# counter, process-tree memory, idle wait) and the sampler's observer effect:
# decode tok/s and TTFT of TELEMETRY_ENGINES (default pytorch) with the sampler
# off and at each interval of TELEMETRY_MODES (default "off 10ms 100ms"; pinCPUS
# confines the launch to those CPUs; pDURATION adds --power-interval DURATION).
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
  # The sampler's observer effect: the same engine with the sampler off and at each interval in TELEMETRY_MODES,
  # one launch per mode per round, the order rotated every round (a Latin square), so drift between rounds
  # cancels. Ratios to "off" are paired by round (scripts/gpu/observer.py).
  modes=(${TELEMETRY_MODES:-off 10ms 100ms})
  mkdir -p "$out/observer"
  for e in ${TELEMETRY_ENGINES:-pytorch}; do
    [[ -x "$BIN/$e" ]] || { echo "observer: no $e in the bundle"; continue; }
    obs=$out/observer/$e-$(date -u +%H%M%S) # one directory per check: a later check on this machine never mixes in
    cat > "$out/observer-$e.yaml" <<EOF
name: observer-$e
model: $MODELS/tinyllama-1.1b
device: cuda:0
dtype: bf16
seed: 1
warmup: ${TELEMETRY_WARMUP:-2}
iterations: ${TELEMETRY_ITERS:-5}
launches: 1
cases:
  - {name: p128-n256, prompt_len: 128, max_new_tokens: 256}
timeouts: {start: 5m, stall: 2m, total: 15m}
EOF
    for ((r = 0; r < ${TELEMETRY_ROUNDS:-3}; r++)); do
      for ((k = 0; k < ${#modes[@]}; k++)); do
        mode=${modes[$(((k + r) % ${#modes[@]}))]}
        # off: no sampler; DURATION: the sampler at that interval; pinCPULIST: the default sampler, the runner and
        # the engine confined to CPULIST (taskset -c), e.g. pin2-3; pDURATION: --power-interval DURATION, e.g. p10ms.
        flags=(--telemetry-interval "$mode") pin=()
        [[ $mode == off ]] && flags=(--no-telemetry)
        [[ $mode == pin* ]] && flags=() pin=(taskset -c "${mode#pin}")
        [[ $mode == p[0-9]* ]] && flags=(--power-interval "${mode#p}") # pDURATION: the default sampler, instant power every DURATION
        echo "observer $e round $((r + 1)) $mode ($(date -u +%T))"
        "${pin[@]}" "$BIN/runner" bench --config "$out/observer-$e.yaml" --engines "$e" --bin-dir "$BIN" \
          --out "$obs/r$((r + 1))-$mode" -q "${flags[@]}" >"$obs-r$((r + 1))-$mode.txt" 2>&1 ||
          echo "observer $e round $((r + 1)) $mode: exit $?"
      done
    done
    python3 "$(dirname "$0")/observer.py" "$obs" | tee "$obs.txt"
  done
fi

echo "== telemetry summary"
cat "$out/summary.txt" 2>/dev/null || echo "no summary (telemetry.test not in \$BIN?)"
