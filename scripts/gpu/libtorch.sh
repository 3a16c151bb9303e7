#!/usr/bin/env bash
# Runs the libtorch engine on the GPU host, in phases (default: conformance export tiny):
#   conformance  runner conformance libtorch on cuda:0 bf16, tiny shape ($MODELS/tiny; the first launch exports)
#   export       exports TinyLlama's package for the bench case (batch 1, 128+256 tokens) in one launch of
#                its own, so its cost is on record (export-tinyllama.jsonl: loaded.compile_ns, settings.export_b1)
#                and no benchmark launch pays it
#   tiny         runner bench, TinyLlama-1.1B, p128-n256, launches interleaved on the same card: libtorch with
#                and without the CUDA graph, pytorch compiled, pytorch eager
#
#   BIN=dir MODELS=dir OUT=dir scripts/gpu/libtorch.sh [phase...]
#
# BIN holds runner, pytorch, libtorch and libcib_libtorch.so (scripts/build-libtorch.sh --gpu). libtorch comes
# from the host's torch venv: CIB_TORCH_LIB, else the torch/lib of $CIB_PYTHON's venv (python3 = /opt/torch/.venv).
# PROMPT, NEW, LIBTORCH_LAUNCHES (2), LIBTORCH_ITERS (5) and LIBTORCH_VARIANTS ("graph nograph compiled eager")
# shape the bench.
set -euo pipefail
: "${BIN:?}" "${MODELS:?}" "${OUT:?}"
export CIB_PYTHON=${CIB_PYTHON:-$(command -v python3)}
# The engine would find torch/lib next to $CIB_PYTHON's venv; asking torch is sure (this script is not a timed process).
export CIB_TORCH_LIB=${CIB_TORCH_LIB:-$("$CIB_PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')}
out="$OUT/libtorch"
mkdir -p "$out"
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/cib-pytorch-inductor-cache}
prompt=${PROMPT:-128} new=${NEW:-256}
phases=("$@")
[[ ${#phases[@]} -gt 0 ]] || phases=(conformance export tiny)
synth() { [[ -f $MODELS/$1/config.json ]] || "$BIN/runner" models synth --shape "$1" --dtype bf16 --out "$MODELS/$1"; }

"$BIN/libtorch" info | tee "$out/info.json"

for phase in "${phases[@]}"; do
  echo "== libtorch phase $phase ($(date -u +%T))"
  case $phase in
  conformance)
    synth tiny
    "$BIN/runner" conformance --bin-dir "$BIN" --model "$MODELS/tiny" --device cuda:0 --dtype bf16 libtorch 2>&1 | tee "$out/conformance.txt" || true
    "$BIN/runner" conformance --bin-dir "$BIN" --model "$MODELS/tiny" --device cuda:0 --dtype bf16 libtorch:cuda_graphs=off 2>&1 | tee "$out/conformance-nograph.txt" || true
    ;;
  export)
    synth tinyllama-1.1b
    "$CIB_PYTHON" -c 'import json,random,sys; m,p,n=sys.argv[1],int(sys.argv[2]),int(sys.argv[3]); v=json.load(open(m+"/config.json"))["vocab_size"]; r=random.Random(1)
print(json.dumps({"protocol":1,"model":m,"device":"cuda:0","dtype":"bf16","seed":1,"warmup":0,"iterations":1,
 "cases":[{"name":"export","prompt_tokens":[1]+[r.randrange(3,v) for _ in range(p-1)],"max_new_tokens":n,"batch_size":1,"greedy":True,"ignore_eos":True}]}))' \
      "$MODELS/tinyllama-1.1b" "$prompt" "$new" > "$out/export-request.json"
    /usr/bin/time -v "$BIN/libtorch" run < "$out/export-request.json" > "$out/export-tinyllama.jsonl" 2> "$out/export-tinyllama.log" ||
      { echo "EXPORT FAILED"; tail -n 40 "$out/export-tinyllama.log"; }
    head -c 3000 "$out/export-tinyllama.jsonl"; echo
    ls -la "$MODELS/tinyllama-1.1b/.aoti" || true
    ;;
  tiny)
    synth tinyllama-1.1b
    cat > "$out/tinyllama.yaml" <<EOF
name: libtorch-vs-pytorch-tinyllama-1.1b
model: $MODELS/tinyllama-1.1b
device: cuda:0
dtype: bf16
seed: 1
warmup: 2
iterations: ${LIBTORCH_ITERS:-5}
launches: ${LIBTORCH_LAUNCHES:-2}
engines:
$(for v in ${LIBTORCH_VARIANTS:-graph nograph compiled eager}; do case $v in
  graph) echo "  - {name: libtorch, label: libtorch-graph, options: {cuda_graphs: \"on\"}}" ;;
  nograph) echo "  - {name: libtorch, label: libtorch-nograph, options: {cuda_graphs: \"off\"}}" ;;
  compiled) echo "  - {name: pytorch, label: pytorch-compiled, options: {mode: compiled}}" ;;
  eager) echo "  - {name: pytorch, label: pytorch-eager, options: {mode: eager}}" ;;
  esac; done)
cases:
  - {name: p$prompt-n$new, prompt_len: $prompt, max_new_tokens: $new}
timeouts: {start: 15m, stall: 5m, total: 30m}
EOF
    "$BIN/runner" bench --bin-dir "$BIN" --config "$out/tinyllama.yaml" --out "$out/results" 2>&1 | tee "$out/runner-tiny.txt" || true
    ;;
  *)
    echo "libtorch.sh: unknown phase $phase (want conformance, export, tiny)" >&2
    exit 64
    ;;
  esac
done
