#!/usr/bin/env bash
# Installs a CUDA 13.0 build toolkit (nvcc 13.0.88 + headers + link libraries)
# from PyPI wheels into ${CIB_CACHE:-$HOME/.cache/cib}/cuda and prints the
# environment to use it. No GPU and no system CUDA needed.
#
#   eval "$(scripts/cuda-toolkit.sh)"     # installs once, then just prints
#
# Why 13.0: the H100 host runs driver 580 (CUDA 13.0), which rejects PTX from a
# newer nvcc (CUDA_ERROR_UNSUPPORTED_PTX_VERSION). The versions below are the
# CUDA 13.0 Update 1 components, the same nvcc (13.0.88) as the GPU host.
# The tree mimics a toolkit install (bin/, nvvm/, targets/x86_64-linux/{include,lib}
# with include/ and lib64/ links) plus lib64/stubs/libcuda.so, a link-time stub
# with soname libcuda.so.1 that the real driver library replaces at run time.
set -euo pipefail

root="${CIB_CACHE:-$HOME/.cache/cib}/cuda"
wheels=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-runtime==13.0.88
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.0.2.14
  nvidia-curand==10.4.0.35
)
stamp="$root/.installed"
want="${wheels[*]}"

if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "cuda-toolkit: installing ${wheels[*]} into $root" >&2
  rm -rf "$root"
  mkdir -p "$root/wheels" "$root/targets/x86_64-linux"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux2014_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 \
    --python-version 3.11 -d "$root/wheels" "${wheels[@]}" >&2
  stage="$root/stage"
  for w in "$root"/wheels/*.whl; do
    python3 -m zipfile -e "$w" "$stage"
  done
  t="$root/targets/x86_64-linux"
  mv "$stage/nvidia/cu13/bin" "$stage/nvidia/cu13/nvvm" "$root/"
  mv "$stage/nvidia/cu13/include" "$stage/nvidia/cu13/lib" "$t/"
  rm -rf "$stage" "$root/wheels"
  chmod +x "$root"/bin/* "$root"/nvvm/bin/*
  ln -s targets/x86_64-linux/include "$root/include"
  ln -s targets/x86_64-linux/lib "$root/lib64"
  ln -s targets/x86_64-linux/lib "$root/lib"
  # Unversioned names for the linker: libcublas.so -> libcublas.so.13 etc.
  for f in "$t"/lib/lib*.so.*; do
    base="$(basename "$f")"
    ln -sf "$base" "$t/lib/${base%%.so.*}.so"
  done
  # libcuda.so stub: every cu* name that cuda.h declares or maps to (e.g.
  # cuMemAlloc -> cuMemAlloc_v2), as empty functions. Only the linker sees it.
  mkdir -p "$t/lib/stubs"
  grep -oE '\bcu[A-Z][A-Za-z0-9_]*\b' "$t/include/cuda.h" | sort -u |
    sed 's/.*/void &(void) {}/' > "$root/cuda-stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$t/lib/stubs/libcuda.so" "$root/cuda-stub.c"
  rm "$root/cuda-stub.c"
  "$root/bin/nvcc" --version >&2
  echo "$want" > "$stamp"
fi

cat <<EOF
export CUDA_HOME='$root'
export CUDA_PATH='$root'
export CUDA_ROOT='$root'
export PATH='$root/bin':"\$PATH"
export LIBRARY_PATH='$root/lib64:$root/lib64/stubs'\${LIBRARY_PATH:+:\$LIBRARY_PATH}
export CUDA_COMPUTE_CAP=90
export CUDARC_CUDA_VERSION=13000
EOF
