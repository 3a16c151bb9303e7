#!/usr/bin/env bash
# setup-torch.sh makes (or reuses) a Python venv holding torch and transformers for the pytorch engine, outside
# the clone under ${CIB_CACHE:-$HOME/.cache/cib}/torch-venv, and prints its interpreter path on stdout (use it as
# CIB_PYTHON). Versions match the GPU host (torch 2.11.0, transformers 5.17.0). PyPI only serves the CUDA build
# of torch for linux x86_64; it runs on CPU as well, but cannot import without its nvidia library wheels
# (libtorch_cuda.so links cudart, cublas, cudnn, nccl…: checked 2026-12-01). Triton is not needed on CPU
# (inductor generates C++ there), so it is removed: the venv is 4.2 GB instead of 4.9 GB. No pip cache is kept
# (the venv itself is the cache): that saves the 3 GB of wheels.
set -euo pipefail
venv=${CIB_CACHE:-$HOME/.cache/cib}/torch-venv
pins=(torch==2.11.0 transformers==5.17.0 safetensors numpy)
stamp="$venv/.cib-$(printf '%s_' "${pins[@]}")no-triton"
if [[ ! -f $stamp ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  pip=("$venv/bin/pip" --disable-pip-version-check --no-input)
  "${pip[@]}" install --no-cache-dir --progress-bar off "${pins[@]}" >&2
  "${pip[@]}" uninstall -y triton >&2
  "$venv/bin/python" -c 'import torch, transformers; print("setup-torch: torch", torch.__version__, "transformers", transformers.__version__)' >&2
  du -sh "$venv" >&2
  touch "$stamp"
fi
echo "$venv/bin/python"
