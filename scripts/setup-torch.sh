#!/usr/bin/env bash
# setup-torch.sh makes (or reuses) a Python venv holding torch and transformers for the pytorch engine, outside
# the clone under ${CIB_CACHE:-$HOME/.cache/cib}/torch-venv, and prints its interpreter path on stdout (use it as
# CIB_PYTHON). Versions match the GPU host (torch 2.11.0, transformers 5.17.0). PyPI only serves the CUDA build
# of torch for linux x86_64 (about 3 GB with its nvidia wheels); it runs on CPU as well.
set -euo pipefail
venv=${CIB_CACHE:-$HOME/.cache/cib}/torch-venv
pins=(torch==2.11.0 transformers==5.17.0 safetensors numpy)
stamp="$venv/.cib-$(printf '%s_' "${pins[@]}")"
if [[ ! -f $stamp ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --disable-pip-version-check --no-input --progress-bar off -q "${pins[@]}" >&2
  "$venv/bin/python" -c 'import torch, transformers; print("setup-torch: torch", torch.__version__, "transformers", transformers.__version__)' >&2
  touch "$stamp"
fi
echo "$venv/bin/python"
