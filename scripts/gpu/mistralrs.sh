#!/usr/bin/env bash
# mistral.rs on the GPU host: conformance on cuda, the adapter-overhead check
# (`mistralrs native`: streamed adapter timing vs mistral.rs's own timing,
# ±3%), then the runner benchmark on TinyLlama-1.1B and Llama-3-8B shapes.
#
#   BIN=dir-with-runner-and-mistralrs MODELS=dir-with-models OUT=results-dir scripts/gpu/mistralrs.sh
#
# $BIN/mistralrs is the CUDA build (scripts/build-mistralrs.sh --cuda), shipped as
# .gpu/mistralrs.tar.xz (~23 MB): tar -xJf mistralrs.tar.xz -C "$BIN".
#
# $MODELS holds synthesized bf16 models tinyllama-1.1b and llama-3-8b. Each
# step runs even if an earlier one failed; the exit status says whether all
# passed. The benchmark runs mistral.rs at its CUDA default (paged attention,
# label mistralrs) and with paged attention off (label mistralrs-eager, the
# Rust builder's default). Knobs: MISTRALRS_LAUNCHES (2), MISTRALRS_ITERS (6),
# MISTRALRS_WARMUP (2), MISTRALRS_EAGER=0 drops the eager variant, MISTRALRS_SHAPES
# (both), MISTRALRS_CONFORMANCE=0 skips conformance, MISTRALRS_PARK=0 skips the
# parked-receiver diagnostic, MISTRALRS_BENCH=0 skips the runner benchmark.
set -uo pipefail

: "${BIN:?BIN: directory with runner and mistralrs}" "${MODELS:?MODELS: model directory}" "${OUT:?OUT: results directory}"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
out="$OUT/mistralrs"
mkdir -p "$out"
launches="${MISTRALRS_LAUNCHES:-2}" iters="${MISTRALRS_ITERS:-6}" warmup="${MISTRALRS_WARMUP:-2}"
read -r -a models <<<"${MISTRALRS_SHAPES:-tinyllama-1.1b llama-3-8b}"
failed=()

step() { # step NAME CMD...: run, log to $out/NAME.log, remember failures
  local name="$1"; shift
  echo "== mistralrs: $name" >&2
  if ! "$@" > >(tee "$out/$name.log") 2> >(tee "$out/$name.err" >&2); then
    failed+=("$name")
  fi
}

request() { # request MODEL_DIR [RECEIVER]: a p128-n256 bf16 cuda request, prompt ids fixed by a seed
  python3 - "$1" "$warmup" "$iters" "${2:-auto}" <<'PY'
import json, random, sys
model, warmup, iters, receiver = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
vocab = json.load(open(model + "/config.json"))["vocab_size"]
rng = random.Random(1)
prompt = [1] + [rng.randrange(3, vocab) for _ in range(127)]
print(json.dumps({"protocol": 1, "model": model, "device": "cuda:0", "dtype": "bf16", "seed": 1,
                  "warmup": warmup, "iterations": iters, "options": {"receiver": receiver},
                  "cases": [{"name": "p128-n256", "prompt_tokens": prompt, "max_new_tokens": 256,
                             "batch_size": 1, "greedy": True, "ignore_eos": True}]}))
PY
}

step info "$BIN/mistralrs" info
if [[ ${MISTRALRS_CONFORMANCE:-1} == 1 ]]; then
  # Paged attention (the CUDA default) has kernels for head sizes 64..512 only: its
  # conformance runs on TinyLlama (head size 64); the tiny shape (16) runs without it.
  step conformance-cuda-bf16-tinyllama "$BIN/runner" conformance --bin-dir "$BIN" --model "$MODELS/tinyllama-1.1b" --device cuda:0 --dtype bf16 mistralrs
  step conformance-cuda-bf16-nopaged "$BIN/runner" conformance --bin-dir "$BIN" --device cuda:0 --dtype bf16 mistralrs:paged_attention=off
  step conformance-cuda-f32-nopaged "$BIN/runner" conformance --bin-dir "$BIN" --device cuda:0 --dtype f32 mistralrs:paged_attention=off
fi

for m in "${models[@]}"; do
  [[ -d "$MODELS/$m" ]] || { echo "mistralrs: $MODELS/$m missing" >&2; failed+=("model-$m"); continue; }
  request "$MODELS/$m" > "$out/native-$m.request.json"
  step "native-$m" "$BIN/mistralrs" native < "$out/native-$m.request.json"
  if [[ "$m" == tinyllama-1.1b && ${MISTRALRS_PARK:-1} == 1 ]]; then # diagnostic: the same check with a parked receiver
    request "$MODELS/$m" park > "$out/native-$m-park.request.json"
    step "native-$m-park" "$BIN/mistralrs" native < "$out/native-$m-park.request.json"
  fi
  [[ ${MISTRALRS_BENCH:-1} == 1 ]] || continue
  variants="  - {name: mistralrs}"
  [[ "${MISTRALRS_EAGER:-1}" == 1 ]] && variants+=$'\n  - {name: mistralrs, label: mistralrs-eager, options: {paged_attention: "off"}}'
  cat > "$out/bench-$m.yaml" <<YAML
name: mistralrs-$m
model: $MODELS/$m
device: cuda:0
dtype: bf16
seed: 1
warmup: $warmup
iterations: $iters
launches: $launches
engines:
$variants
cases:
  - {name: p128-n256, prompt_len: 128, max_new_tokens: 256}
timeouts: {start: 5m, stall: 2m, total: 20m}
YAML
  step "bench-$m" "$BIN/runner" bench --bin-dir "$BIN" --config "$out/bench-$m.yaml" --out "$out/results"
done

echo "== mistralrs summary" >&2
for m in "${models[@]}"; do
  grep -h '^native ' "$out/native-$m.err" "$out/native-$m-park.err" 2>/dev/null
done
if ((${#failed[@]})); then
  echo "mistralrs: FAILED steps: ${failed[*]}" >&2
  exit 1
fi
echo "mistralrs: all steps passed" >&2
