#!/usr/bin/env bash
# Runs the pytorch engine on the GPU host, in phases (default: all, in this order):
#   conformance  runner conformance pytorch on cuda:0 (default mode, eager)
#   native       engines/pytorch/bench/bench.py: the compiled decode loop with no Go and no protocol, after a
#                self-check (CUDA graph vs no graph must agree exactly; vs plain torch and transformers reported)
#   tiny | 8b    runner bench of mode=compiled and mode=eager (interleaved launches) on one shape
#
#   BIN=dir MODELS=dir OUT=dir scripts/gpu/pytorch.sh [phase...]
#
# BIN holds runner and pytorch (Go binaries, no CUDA link: torch brings CUDA); MODELS holds tinyllama-1.1b and
# llama-3-8b (runner models synth, bf16). Python is $CIB_PYTHON, default python3 (the host's torch venv). Run
# from the repository root (bench.py is read from the tree). torch.compile caches (Inductor, Triton, tuning
# results) persist in TORCHINDUCTOR_CACHE_DIR, so only the first compiled launch compiles cold: compile_ns in
# the loaded events shows it. DEVICE, DTYPE, PROMPT and NEW override cuda:0, bf16, 128 and 256 (DEVICE=cpu
# DTYPE=f32 with small models is a dry run of this script off the GPU host). PYTORCH_LAUNCHES (2), PYTORCH_ITERS (5)
# and PYTORCH_VARIANTS ("compiled eager"; also max-autotune) shape the runner phases.
set -euo pipefail
: "${BIN:?}" "${MODELS:?}" "${OUT:?}"
export CIB_PYTHON=${CIB_PYTHON:-python3}
out="$OUT/pytorch"
mkdir -p "$out"
# Outside $OUT: the cache can be large and need not come back.
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/cib-pytorch-inductor-cache}
device=${DEVICE:-cuda:0} dtype=${DTYPE:-bf16} prompt=${PROMPT:-128} new=${NEW:-256}
phases=("$@")
[[ ${#phases[@]} -gt 0 ]] || phases=(conformance native tiny 8b)
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1 || echo unknown)

"$BIN/pytorch" info > "$out/info.json"

for phase in "${phases[@]}"; do
  case $phase in
  conformance)
    "$BIN/runner" conformance --bin-dir "$BIN" --device "$device" --dtype "$dtype" pytorch 2>&1 | tee "$out/conformance.txt" || true
    ;;
  native)
    for s in tinyllama-1.1b llama-3-8b; do
      echo "== bench.py $s ($card)"
      eager=()
      [[ $s == tinyllama-1.1b ]] && eager=(--eager) # transformers agreement on the small shape only (saves a 16 GB load)
      "$CIB_PYTHON" engines/pytorch/bench/bench.py run --model "$MODELS/$s" --device "$device" --dtype "$dtype" \
        --prompt $prompt --new $new --warmup 1 --iters 5 --check "${eager[@]}" 2>"$out/bench-$s.log" | tee "$out/bench-$s.jsonl" || tail -n 30 "$out/bench-$s.log"
    done
    # Without torch.compile (CUDA graph of plain torch ops): the GPU.md anchor's configuration.
    "$CIB_PYTHON" engines/pytorch/bench/bench.py run --model "$MODELS/tinyllama-1.1b" --device "$device" --dtype "$dtype" \
      --prompt $prompt --new $new --warmup 1 --iters 5 --compile none 2>"$out/bench-nocompile.log" | tee "$out/bench-nocompile.jsonl" || tail -n 30 "$out/bench-nocompile.log"
    ;;
  tiny | 8b)
    s=tinyllama-1.1b
    [[ $phase == 8b ]] && s=llama-3-8b
    # If Inductor cannot compile here at all, benchmark the compiled mode without torch.compile (CUDA graph of
    # plain torch ops) rather than nothing, and say so in the label.
    compiled="{name: pytorch, label: pytorch-compiled, options: {mode: compiled}}"
    if ! "$CIB_PYTHON" -c 'import torch; f = torch.compile(lambda x: x * 2 + 1, fullgraph=True); f(torch.ones(8, device="cuda"))' 2>"$out/probe-compile.log"; then
      echo "pytorch.sh: torch.compile fails on this host (see $out/probe-compile.log); compiled mode runs with compile=none" >&2
      compiled="{name: pytorch, label: pytorch-compiled-nocompile, options: {mode: compiled, compile: none}}"
    fi
    cat > "$out/$s.yaml" <<EOF
name: pytorch-$s
model: $MODELS/$s
device: $device
dtype: $dtype
seed: 1
warmup: 1
iterations: ${PYTORCH_ITERS:-5}
launches: ${PYTORCH_LAUNCHES:-2}
engines:
$(for v in ${PYTORCH_VARIANTS:-compiled eager}; do case $v in
  compiled) echo "  - $compiled" ;;
  eager) echo "  - {name: pytorch, label: pytorch-eager, options: {mode: eager}}" ;;
  max-autotune) echo "  - {name: pytorch, label: pytorch-compiled-max-autotune, options: {mode: compiled, compile: max-autotune}}" ;;
  esac; done)
cases:
  - {name: p$prompt-n$new, prompt_len: $prompt, max_new_tokens: $new}
timeouts: {start: 15m, stall: 5m, total: 30m}
EOF
    "$BIN/runner" bench --bin-dir "$BIN" --config "$out/$s.yaml" --out "$out/results" 2>&1 | tee "$out/runner-$s.txt" || true
    ;;
  *)
    echo "pytorch.sh: unknown phase $phase (want conformance, native, tiny, 8b)" >&2
    exit 64
    ;;
  esac
done

echo "== pytorch on $card: bench.py (no Go, no protocol), $dtype, p$prompt n$new, median of 5"
for f in "$out"/bench-*.jsonl; do
  [[ -f $f ]] || continue
  echo "$(basename "$f" .jsonl): $(grep -h decode_tok_s "$f" | tr '\n' ' ')"
done
echo "(adapter overhead: compare with pytorch-compiled decode tok/s in $out/runner-*.txt; roofline at 3009 GB/s: 1.1B 1454, 8B 200 tok/s)"
