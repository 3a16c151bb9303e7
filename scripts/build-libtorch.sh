#!/usr/bin/env bash
# Builds the libtorch engine: the C++ bridge engines/libtorch/bridge/lib/libcib_libtorch.so (g++ against the
# torch wheel's headers and libraries in the venv scripts/setup-torch.sh makes: torch 2.11.0+cu130, the same
# torch as the GPU host's) and the Go binary bin/libtorch, which dlopens the bridge at run time (so the Go build
# needs no libtorch). CUDA headers: crt/ and cuda_runtime_api.h from the CUDA 13.0 wheels scripts/cuda-toolkit.sh or
# scripts/build-cupti-profiler.sh fetch (plus CCCL's nv/ from nvidia-cuda-cccl 13.0.85 where that tree lacks it),
# the runtime and cuBLAS/cuSPARSE headers from the venv's nvidia/cu13 first (the versions torch was built with; the
# runtime headers must match cuBLAS's, 13.0.96 and 13.1 there); nothing CUDA is linked
# but libtorch's own libraries.
#
#   scripts/build-libtorch.sh          bin/libtorch + bin/libcib_libtorch.so
#   scripts/build-libtorch.sh --gpu    also .gpu/libtorch.tar.xz with both, for the GPU host
#                                      (--cuda is the same: scripts/gpu-bundle.sh calls every engine's script so)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-}"
[[ $mode != --cuda ]] || mode=--gpu
case "$mode" in
  --gpu | "") ;;
  *) echo "usage: $0 [--gpu|--cuda]" >&2; exit 64 ;;
esac
cache="${CIB_CACHE:-$HOME/.cache/cib}"
python="$(scripts/setup-torch.sh)"
site="$("$python" -c 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))')"
abi="$("$python" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')"
torch="$site/torch"
cuda_inc=""
for d in "$cache/cuda/include" "$cache/cupti/x/nvidia/cu13/include"; do
  [[ -f $d/crt/host_defines.h && -f $d/cuda_runtime_api.h ]] && { cuda_inc=$d; break; }
done
if [[ -z $cuda_inc ]]; then
  scripts/build-cupti-profiler.sh "$cache/cupti/bin" >/dev/null
  cuda_inc="$cache/cupti/x/nvidia/cu13/include"
fi
# cuda_fp16.h includes <nv/target>, which is CCCL's (nvidia-cuda-cccl): the full toolkit tree has it, the CUPTI
# wheels and the torch venv do not. Fetch the CUDA 13.0 CCCL headers once (a few MB) where it is missing.
cccl_inc=""
if [[ ! -e $cuda_inc/nv/target ]]; then
  cccl="$cache/cccl-13.0.85"
  if [[ ! -e $cccl/nvidia/cu13/include/nv/target ]]; then
    rm -rf "$cccl.tmp" && mkdir -p "$cccl.tmp"
    "$python" -m pip download --quiet --no-deps --only-binary=:all: --disable-pip-version-check \
      --platform manylinux2014_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 \
      -d "$cccl.tmp" nvidia-cuda-cccl==13.0.85 >&2
    "$python" -m zipfile -e "$cccl.tmp"/nvidia_cuda_cccl-*.whl "$cccl.tmp/x"
    rm -rf "$cccl" && mv "$cccl.tmp/x" "$cccl" && rm -rf "$cccl.tmp"
  fi
  cccl_inc="$cccl/nvidia/cu13/include"
  [[ -e $cccl_inc/nv/target ]] || { echo "build-libtorch: no nv/target in $cccl_inc (nvidia-cuda-cccl 13.0.85)" >&2; exit 1; }
fi
src=engines/libtorch/bridge
mkdir -p "$src/lib" bin
# -O2, not -O3: the bridge only queues work; the kernels are in the AOTInductor package.
g++ -std=c++17 -O2 -g0 -fPIC -shared -fvisibility=hidden -Wall -Wno-unused-function \
  -D_GLIBCXX_USE_CXX11_ABI="$abi" -DCIB_LT_CUDA \
  -isystem "$torch/include" -isystem "$torch/include/torch/csrc/api/include" -isystem "$site/nvidia/cu13/include" -isystem "$cuda_inc" ${cccl_inc:+-isystem "$cccl_inc"} \
  -Wl,-soname,libcib_libtorch.so -Wl,--no-as-needed \
  -o "$src/lib/libcib_libtorch.so.tmp" "$src/cib_libtorch.cpp" \
  -L"$torch/lib" -ltorch -ltorch_cuda -ltorch_cpu -lc10_cuda -lc10 -Wl,-rpath,"$torch/lib"
mv "$src/lib/libcib_libtorch.so.tmp" "$src/lib/libcib_libtorch.so"
cp "$src/lib/libcib_libtorch.so" bin/libcib_libtorch.so
go build -trimpath -ldflags="-s -w" -o bin/libtorch ./engines/libtorch

if [[ $mode == --gpu ]]; then
  mkdir -p .gpu
  XZ_OPT="-6 -T${CIB_JOBS:-$(nproc)}" tar -cJf .gpu/libtorch.tar.xz -C bin libtorch libcib_libtorch.so
  ls -l bin/libtorch bin/libcib_libtorch.so .gpu/libtorch.tar.xz >&2
fi
echo "built bin/libtorch, bin/libcib_libtorch.so (torch $("$python" -c 'import torch; print(torch.__version__)'), CXX11 ABI $abi)" >&2
