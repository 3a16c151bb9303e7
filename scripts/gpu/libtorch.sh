#!/usr/bin/env bash
# Runs the libtorch engine on the GPU host, in phases (default: conformance bench):
#   conformance  runner conformance libtorch on cuda:0 bf16, tiny shape ($MODELS/tiny; the first launch exports), with the
#                CUDA graph, without it, and with the weights inside the package (weights=package)
#   bench        runner bench of the SHAPE model, p128-n256, launches interleaved on the same card: libtorch with
#                and without the CUDA graph, pytorch compiled, pytorch eager (LIBTORCH_VARIANTS); the runner's
#                `libtorch prepare` exports the package before the first launch and records its cost (prepare.jsonl,
#                the report's Engines section), so no launch's cold start carries it. (`tiny`: the same phase.)
#
#   BIN=dir MODELS=dir OUT=dir scripts/gpu/libtorch.sh [phase...]
#
# BIN holds runner, pytorch, libtorch and libcib_libtorch.so (scripts/build-libtorch.sh --gpu). libtorch comes
# from the host's torch venv: CIB_TORCH_LIB, else the torch/lib of $CIB_PYTHON's venv (python3 = /opt/torch/.venv).
# DEVICE (cuda:0), DTYPE (bf16) and SHAPE (tinyllama-1.1b) make a CPU dry run possible (DEVICE=cpu DTYPE=f32
# SHAPE=tiny PROMPT=8 NEW=16 LIBTORCH_VARIANTS="nograph compiled eager"). PROMPT (128), NEW (256),
# LIBTORCH_LAUNCHES (2), LIBTORCH_ITERS (5) and LIBTORCH_VARIANTS ("graph nograph compiled eager"; also
# compiled-prefill: pytorch with its prefill compiled too, as libtorch's always is; graph-block and compiled-block:
# libtorch and pytorch compiled awaiting tokens with wait=block, so host CPU per step is each loop's own work)
# shape the bench.
set -euo pipefail
: "${BIN:?}" "${MODELS:?}" "${OUT:?}"
export CIB_PYTHON=${CIB_PYTHON:-$(command -v python3)}
# The engine would find torch/lib next to $CIB_PYTHON's venv; asking torch is sure (this script is not a timed process).
export CIB_TORCH_LIB=${CIB_TORCH_LIB:-$("$CIB_PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')}
out="$OUT/libtorch"
mkdir -p "$out"
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/cib-pytorch-inductor-cache}
prompt=${PROMPT:-128} new=${NEW:-256} device=${DEVICE:-cuda:0} dtype=${DTYPE:-bf16} shape=${SHAPE:-tinyllama-1.1b}
phases=("$@")
[[ ${#phases[@]} -gt 0 ]] || phases=(conformance bench)
synth() { [[ -f $MODELS/$1/config.json ]] || "$BIN/runner" models synth --shape "$1" --dtype "$dtype" --out "$MODELS/$1"; }

"$BIN/libtorch" info | tee "$out/info.json"

for phase in "${phases[@]}"; do
  echo "== libtorch phase $phase ($(date -u +%T))"
  case $phase in
  conformance)
    synth tiny
    "$BIN/runner" conformance --bin-dir "$BIN" --model "$MODELS/tiny" --device "$device" --dtype "$dtype" libtorch 2>&1 | tee "$out/conformance.txt" || true
    "$BIN/runner" conformance --bin-dir "$BIN" --model "$MODELS/tiny" --device "$device" --dtype "$dtype" libtorch:cuda_graphs=off 2>&1 | tee "$out/conformance-nograph.txt" || true
    # The weights inside the package (the layout before weights=file became the default): the fallback.
    "$BIN/runner" conformance --bin-dir "$BIN" --model "$MODELS/tiny" --device "$device" --dtype "$dtype" libtorch:weights=package 2>&1 | tee "$out/conformance-weights-package.txt" || true
    ;;
  bench | tiny)
    synth "$shape"
    cat > "$out/$shape.yaml" <<EOF
name: libtorch-vs-pytorch-$shape
model: $MODELS/$shape
device: $device
dtype: $dtype
seed: 1
warmup: 2
iterations: ${LIBTORCH_ITERS:-5}
launches: ${LIBTORCH_LAUNCHES:-2}
engines:
$(for v in ${LIBTORCH_VARIANTS:-graph nograph compiled eager}; do case $v in
  graph) echo "  - {name: libtorch, label: libtorch-graph, options: {cuda_graphs: \"on\"}}" ;;
  nograph) echo "  - {name: libtorch, label: libtorch-nograph, options: {cuda_graphs: \"off\"}}" ;;
  graph-block) echo "  - {name: libtorch, label: libtorch-graph-block, options: {cuda_graphs: \"on\", wait: block}}" ;;
  compiled) echo "  - {name: pytorch, label: pytorch-compiled, options: {mode: compiled}}" ;;
  compiled-block) echo "  - {name: pytorch, label: pytorch-compiled-block, options: {mode: compiled, wait: block}}" ;;
  compiled-prefill) echo "  - {name: pytorch, label: pytorch-compiled-prefill, options: {mode: compiled, prefill: compiled}}" ;;
  eager) echo "  - {name: pytorch, label: pytorch-eager, options: {mode: eager}}" ;;
  esac; done)
cases:
  - {name: p$prompt-n$new, prompt_len: $prompt, max_new_tokens: $new}
timeouts: {start: 15m, stall: 5m, total: 30m}
EOF
    # END_AT (epoch seconds) interrupts the runner like Ctrl-C at that time: it still writes the report of every finished launch.
    lim=0
    [[ -n ${END_AT:-} ]] && lim=$((END_AT - $(date +%s)))s
    timeout --signal=INT --kill-after=30 "$lim" \
      "$BIN/runner" bench --bin-dir "$BIN" --config "$out/$shape.yaml" --out "$out/results" 2>&1 | tee "$out/runner-$shape.txt" || true
    ;;
  *)
    echo "libtorch.sh: unknown phase $phase (want conformance, bench)" >&2
    exit 64
    ;;
  esac
done
