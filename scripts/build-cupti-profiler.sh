#!/usr/bin/env bash
# Builds profiler/cib_cupti.c into OUT_DIR/libcib_cupti.so (default .gpu/bin), the
# CUPTI activity tracer `runner bench --profile kernels` injects into engines
# through CUDA_INJECTION64_PATH. Headers come from the CUDA 13.0 PyPI wheels
# (CUPTI 13.0.85, plus cuda.h and crt/ that cupti_activity.h includes), cached in
# ${CIB_CACHE:-$HOME/.cache/cib}/cupti; nothing is linked against libcupti: the
# library dlopens it at run time (see profiler/README.md). No GPU needed.
#   scripts/build-cupti-profiler.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.gpu/bin}"
root="${CIB_CACHE:-$HOME/.cache/cib}/cupti"
wheels=(nvidia-cuda-cupti==13.0.85 nvidia-cuda-runtime==13.0.88 nvidia-cuda-crt==13.0.88)
inc="$root/x/nvidia/cu13/include"
if [[ ! -f "$root/.installed" || "$(cat "$root/.installed")" != "${wheels[*]}" ]]; then
  echo "build-cupti-profiler: fetching ${wheels[*]} into $root" >&2
  rm -rf "$root"
  mkdir -p "$root/wheels"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux2014_x86_64 --platform manylinux_2_25_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_28_x86_64 --python-version 3.11 -d "$root/wheels" "${wheels[@]}" >&2
  for w in "$root"/wheels/*.whl; do
    python3 -m zipfile -e "$w" "$root/x"
  done
  echo "${wheels[*]}" > "$root/.installed"
fi
mkdir -p "$out"
cc -O2 -g0 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden -I"$inc" \
  -Wl,-soname,libcib_cupti.so -o "$out/libcib_cupti.so.tmp" profiler/cib_cupti.c -ldl -pthread
mv "$out/libcib_cupti.so.tmp" "$out/libcib_cupti.so"
echo "$out/libcib_cupti.so"
