#!/usr/bin/env bash
# Measures the lmrs engine on the GPU host's CPU (lmrs is CPU only, as lm.rs is): the host's memory
# bandwidth (runner cpu probe, the decode roofline), conformance, then decode tok/s on the TinyLlama-1.1B shape
# for f32, q8_0 and q4_0 at 1 thread and every core, next to the reference engine and candle on the CPU.
#
#   BIN=dir MODELS=dir OUT=dir scripts/gpu/lmrs.sh
#
# BIN holds runner, reference, lmrs (.gpu/lmrs.tar.xz) and candle (.gpu/candle.tar.xz, its CUDA build also
# runs on the CPU); MODELS holds tinyllama-1.1b (runner models synth, bf16). Every step runs even if an
# earlier one failed. LMRS_NEW (32) new tokens after a 32-token prompt; LMRS_ITERS (3) timed iterations;
# LMRS_QUANTS ("q8_0 q4_0 f32"; set and empty: none), LMRS_THREADS ("1 <all cores>") and LMRS_HF=0 (skip the
# HF-directory comparison with reference and candle) shorten it; LMRS_HF_ENGINES replaces that comparison's
# variants (default: lmrs q8_0 converted in memory, reference and candle, all cores and 1 thread; candle only
# where $BIN/candle exists). A full pass does not fit one 10-minute device call: split it, e.g.
#   LMRS_QUANTS="q8_0 q4_0" LMRS_HF=0 ...;  LMRS_QUANTS=f32 LMRS_HF=0 ...;  LMRS_QUANTS= ...
set -uo pipefail
: "${BIN:?}" "${MODELS:?}" "${OUT:?}"
out="$OUT/lmrs"
mkdir -p "$out"
model="$MODELS/tinyllama-1.1b"
cores=$(nproc)
new=${LMRS_NEW:-32} iters=${LMRS_ITERS:-3}
failed=()
step() { # step NAME CMD...: run, log to $out/NAME.txt, remember failures
  local name="$1"; shift
  echo "== lmrs: $name" >&2
  "$@" 2>&1 | tee "$out/$name.txt"
  (( PIPESTATUS[0] == 0 )) || failed+=("$name")
}
bench() { # bench NAME MODEL ENGINES
  step "bench-$1" "$BIN/runner" bench --bin-dir "$BIN" --model "$2" --device cpu --dtype f32 --engines "$3" \
    --prompt-len 32 --new-tokens "$new" --launches 1 --iterations "$iters" --warmup 1 --no-telemetry \
    --format csv --out "$out/results"
}

{ lscpu; free -g; nproc; uname -a; } >"$out/env.txt" 2>&1
step info "$BIN/lmrs" info
if [[ ${LMRS_PROBE:-1} == 1 ]]; then # LMRS_PROBE=0: no bandwidth probe and no conformance (a call that repeats them)
  step probe-all "$BIN/runner" cpu probe --json
  step probe-1 "$BIN/runner" cpu probe --threads 1 --bytes $((1 << 30)) --json
  step conformance "$BIN/runner" conformance --bin-dir "$BIN" --device cpu --dtype f32 lmrs
fi
variants() { local v=() t; for t in ${LMRS_THREADS:-1 $cores}; do v+=("lmrs:threads=$t"); done; (IFS=,; echo "${v[*]}"); }
for q in ${LMRS_QUANTS-q8_0 q4_0 f32}; do
  step "convert-$q" "$BIN/runner" models convert --to lmrs --quant "$q" --model "$model" --out "$MODELS/tinyllama-lmrs-$q" --overwrite
  bench "lmrs-$q" "$MODELS/tinyllama-lmrs-$q" "$(variants)"
done
# The same engines on the HF directory: lmrs converting in memory (cold start), reference, candle on the CPU.
hf="lmrs:quant=q8_0:threads=$cores,reference:threads=$cores,reference:threads=1"
if [[ -x $BIN/candle ]]; then
  hf+=",candle:threads=$cores,candle:threads=1"
else
  echo "== lmrs: no $BIN/candle (carry .gpu/candle.tar.xz from scripts/build-candle.sh --gpu): candle left out" >&2
fi
[[ ${LMRS_HF:-1} == 1 ]] && bench hf "$model" "${LMRS_HF_ENGINES:-$hf}"
echo "== lmrs: failed steps: ${failed[*]:-none}"
((${#failed[@]} == 0))
