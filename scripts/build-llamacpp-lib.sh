#!/usr/bin/env bash
# Builds llama.cpp's static libraries (libllama.a, libggml*.a) from the sources that the crates.io
# crate llama-cpp-sys-2 vendors, with llama.cpp's own CMake, and prints the install prefix.
#
#   scripts/build-llamacpp-lib.sh          CPU build (OpenMP, AVX2/FMA/F16C: runs on this machine and the GPU host)
#   scripts/build-llamacpp-lib.sh --cuda   + ggml-cuda for sm_90 (nvcc 13.0.88 from PyPI, scripts/cuda-toolkit.sh),
#                                          flash attention kernels as llama.cpp builds them by default
#
# Everything lives under ${CIB_CACHE:-$HOME/.cache/cib}/llamacpp: the crate (downloaded once and checked
# against its sha256), the build trees and the install prefixes cpu/ and cuda/. A finished build is kept
# (keyed by its CMake arguments); rerunning is instant. The build time is written to <prefix>/BUILD_SECONDS.
# CIB_JOBS (default: the core count) bounds the parallelism.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

version=0.1.161
sha256=e9bea77fde41bbc15a278891cd5edd2ba07c5260d162614b41080ba1f100b39b
mode="${1:-}"
case "$mode" in "" | --cuda) ;; *) echo "usage: $0 [--cuda]" >&2; exit 64 ;; esac
cache="${CIB_CACHE:-$HOME/.cache/cib}/llamacpp"
jobs="${CIB_JOBS:-$(nproc)}"
flavor=cpu
[[ $mode != --cuda ]] || flavor=cuda
prefix="$cache/$flavor"
mkdir -p "$cache"
crate="$cache/llama-cpp-sys-2-$version.crate"
src="$cache/llama-cpp-sys-2-$version/llama.cpp"
if [[ ! -d $src ]]; then
  if [[ ! -s $crate ]]; then
    curl -sSfL --retry 3 -o "$crate.tmp" "https://static.crates.io/crates/llama-cpp-sys-2/llama-cpp-sys-2-$version.crate"
    mv "$crate.tmp" "$crate"
  fi
  echo "$sha256  $crate" | sha256sum -c --quiet - || { echo "build-llamacpp-lib: $crate: checksum mismatch" >&2; exit 1; }
  tar -xzf "$crate" -C "$cache"
fi

args=(
  -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON
  -DCMAKE_INSTALL_PREFIX="$prefix"
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF
  -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
  # The crate builds without a git tree: name the release it vendors (llama-cpp-sys-2 $version).
  -DLLAMA_BUILD_COMMIT="llama-cpp-sys-2-$version"
  # Portable x86-64-v3 code, not -march=native: the same build runs here and on the GPU host.
  -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
  -DGGML_OPENMP=ON -DGGML_BLAS=OFF
)
if [[ $flavor == cuda ]]; then
  eval "$("$here/cuda-toolkit.sh")"
  args+=(
    -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_CUDA_COMPILER="$CUDA_HOME/bin/nvcc"
    -DCUDAToolkit_ROOT="$CUDA_HOME" -DGGML_CUDA_NCCL=OFF
  )
fi
# A finished build is keyed by its CMake arguments: edits elsewhere in this script do not rebuild.
key="$(printf '%s\n' "$version" "${args[@]}" | sha256sum | cut -c1-16)"
if [[ -f $prefix/.built && "$(cat "$prefix/.built")" == "$key" ]]; then
  echo "$prefix"
  exit 0
fi
build="$cache/build-$flavor"
start=$(date +%s)
cmake -S "$src" -B "$build" "${args[@]}" >"$cache/configure-$flavor.log" 2>&1 ||
  { tail -30 "$cache/configure-$flavor.log" >&2; exit 1; }
cmake --build "$build" -j"$jobs" >"$cache/build-$flavor.log" 2>&1 ||
  { grep -B2 -A10 -m3 "error" "$cache/build-$flavor.log" >&2 || tail -30 "$cache/build-$flavor.log" >&2; exit 1; }
rm -rf "$prefix"
cmake --install "$build" >/dev/null
echo $(($(date +%s) - start)) >"$prefix/BUILD_SECONDS"
echo "$key" >"$prefix/.built"
echo "build-llamacpp-lib: $flavor build took $(cat "$prefix/BUILD_SECONDS") s on $jobs jobs" >&2
echo "$prefix"
