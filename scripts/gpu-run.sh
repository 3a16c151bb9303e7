#!/usr/bin/env bash
# Runs on the GPU host, from the repository root, with $OUT set (device tool):
# unpacks .gpu/bundle.tar.zst, synthesizes the models it needs, then runs one
# stage. Results go to $OUT/results.tar.gz and the log to $OUT/log.txt.
#   scripts/gpu-run.sh smoke       # GPU facts, bandwidth probe, conformance of every engine on cuda
#   scripts/gpu-run.sh native      # engine-native decode timings (adapter-overhead check)
#   scripts/gpu-run.sh bench SHAPE # runner benchmark of every engine on SHAPE (tinyllama-1.1b | llama-3-8b)
set -euo pipefail
stage=${1:?stage}
: "${OUT:?}"
W=/tmp/cib BIN=/tmp/cib/bin MODELS=/tmp/cib/models
mkdir -p "$W" "$MODELS" "$OUT/results"
[[ -x $BIN/runner ]] || tar --zstd -xf .gpu/bundle.tar.zst -C "$W"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CIB_CACHE=$W/cache CIB_PYTHON=${CIB_PYTHON:-python3} PYTHONUNBUFFERED=1
log="$OUT/log.txt"
exec > >(tee -a "$log") 2>&1
engines=()
for e in pytorch candle burn mistralrs; do [[ -x $BIN/$e ]] && engines+=("$e"); done
synth() { [[ -f $MODELS/$1/config.json ]] || "$BIN/runner" models synth --shape "$1" --dtype bf16 --out "$MODELS/$1"; }
pack() { tar -czf "$OUT/results.tar.gz" -C "$OUT" results; rm -rf "$OUT/results"; }
trap pack EXIT

case $stage in
smoke)
  nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,power.limit,clocks.max.sm,clocks.max.mem --format=csv
  "$BIN/runner" gpu info
  "$BIN/runner" gpu probe || echo "probe failed"
  "$BIN/runner" engines --bin-dir "$BIN"
  synth tinyllama-1.1b
  for e in "${engines[@]}"; do
    echo "=== conformance $e (cuda:0, bf16, tinyllama-1.1b)"
    "$BIN/runner" conformance "$e" --bin-dir "$BIN" --model "$MODELS/tinyllama-1.1b" --device cuda:0 --dtype bf16 || echo "CONFORMANCE FAILED: $e"
  done
  ;;
native)
  synth tinyllama-1.1b
  for s in ${SHAPES-tinyllama-1.1b llama-3-8b}; do
    synth "$s"
    for e in candle burn mistralrs pytorch; do
      if [[ -x scripts/gpu/native-$e.sh ]]; then BIN=$BIN MODEL=$MODELS/$s scripts/gpu/native-$e.sh || echo "NATIVE FAILED: $e $s"; fi
    done
  done
  ;;
bench)
  shape=${2:?shape}
  synth "$shape"
  list=${ENGINE_LIST:-pytorch:mode=eager,pytorch:mode=compiled,candle,burn,mistralrs}
  case $shape in tinyllama-1.1b) cfg=configs/decode-tinyllama.yaml ;; llama-3-8b) cfg=configs/decode.yaml ;; *) exit 2 ;; esac
  "$BIN/runner" bench --bin-dir "$BIN" --config "$cfg" --model "$MODELS/$shape" \
    --engines "$list" --out "$OUT/results" ${BENCH_FLAGS:-} || echo "runner exit $?"
  ;;
*) echo "unknown stage $stage" >&2; exit 2 ;;
esac
