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
# with soname libcuda.so.1 that the real driver library replaces at run time,
# and lib64/stubs/libcib_cuda_compat.a (see below; link it last with
# -lcib_cuda_compat).
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
t="$root/targets/x86_64-linux"

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
  "$root/bin/nvcc" --version >&2
  echo "$want" > "$stamp"
fi

# Link helpers, added in place (other builds may be using the tree).
mkdir -p "$t/lib/stubs"
# libcuda.so stub: every cu* name that cuda.h declares or maps to (e.g.
# cuMemAlloc -> cuMemAlloc_v2), as empty functions. Only the linker sees it.
if [[ ! -f "$t/lib/stubs/libcuda.so" ]]; then
  grep -oE '\bcu[A-Z][A-Za-z0-9_]*\b' "$t/include/cuda.h" | sort -u |
    sed 's/.*/void &(void) {}/' > "$root/cuda-stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$root/libcuda.so.tmp" "$root/cuda-stub.c"
  mv "$root/libcuda.so.tmp" "$t/lib/stubs/libcuda.so"
  rm "$root/cuda-stub.c"
fi
# libcuda.so.1 beside it: with lib64/stubs on LD_LIBRARY_PATH a CUDA build starts here (no driver) far enough to
# print `ENGINE info`, which the build scripts check (the stub's functions do nothing; nothing is run on it).
[[ -e $t/lib/stubs/libcuda.so.1 ]] || ln -s libcuda.so "$t/lib/stubs/libcuda.so.1"
# libcib_cuda_compat.a: functions that cudarc 0.19's "cuda-13000" bindings
# declare but CUDA 13.0.x does not ship (cuBLASLt emulation descriptors
# arrived in a later cuBLAS; cuProfilerInitialize left cuda.h in 12.0).
# Nothing calls them; linking this archive last lets the link resolve them
# locally, and if one were ever called it aborts with its name.
if [[ ! -f "$t/lib/stubs/libcib_cuda_compat.a" ]]; then
  {
    echo '#include <stdio.h>'
    echo '#include <stdlib.h>'
    echo 'static void missing(const char *f) { fprintf(stderr, "%s: not in CUDA 13.0, called anyway\n", f); abort(); }'
    for f in cuProfilerInitialize cublasLtEmulationDescCreate cublasLtEmulationDescDestroy \
      cublasLtEmulationDescGetAttribute cublasLtEmulationDescSetAttribute cublasLtEmulationDescInit_internal; do
      echo "int $f(void) { missing(\"$f\"); return 1; }"
    done
  } > "$root/compat.c"
  cc -c -O2 -fPIC -o "$root/compat.o" "$root/compat.c"
  ar rcs "$root/compat.a.tmp" "$root/compat.o"
  mv "$root/compat.a.tmp" "$t/lib/stubs/libcib_cuda_compat.a"
  rm "$root/compat.c" "$root/compat.o"
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
