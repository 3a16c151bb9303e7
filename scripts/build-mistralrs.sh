#!/usr/bin/env bash
# Builds the mistral.rs engine: the Rust bridge crate (static library) and the
# Go binary around it.
#
#   scripts/build-mistralrs.sh          # CPU:  bin/mistralrs
#   scripts/build-mistralrs.sh --cuda   # CUDA (sm_90, nvcc 13.0.88): .gpu/bin/mistralrs
#
# Cargo's target dir lives outside the clone, in ${CIB_CACHE:-$HOME/.cache/cib},
# so reruns are incremental; nothing depends on it existing. CPU and CUDA builds
# share it: only the crates under candle differ between them, so the second
# build reuses the other ~450 (tokenizers, llguidance, tokio, image…).
# CIB_JOBS bounds parallelism, nvcc's included (default: the core count).
# CIB_PROFILE=cibtest (scripts/test.sh) builds the CPU bridge in the quick-to-compile
# test profile into bin/cibtest/; --cuda always builds release.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CIB_CACHE:-$HOME/.cache/cib}"
crate="$root/engines/mistralrs/bridge"
cuda=0
[[ "${1:-}" == "--cuda" ]] && cuda=1
export CARGO_TARGET_DIR="$cache/target-mistralrs"
jobs="${CIB_JOBS:-$(nproc)}"
profile="${CIB_PROFILE:-release}"
export RAYON_NUM_THREADS="$jobs" # cudaforge runs nvcc jobs on a rayon pool

if ((cuda)); then
  eval "$("$root/scripts/cuda-toolkit.sh")"
  lib=libcib_mistralrs_cuda.a
  features=(--features cuda)
  out="$root/.gpu/bin"
  tags=(-tags cuda)
  profile=release
else
  lib=libcib_mistralrs.a
  features=()
  out="$root/bin"
  tags=()
  [[ $profile == release ]] || out="$root/bin/$profile"
fi

(cd "$crate" && cargo build --profile "$profile" --locked -j "$jobs" "${features[@]}")
mkdir -p "$crate/lib" "$out"
cp "$CARGO_TARGET_DIR/$profile/libcib_mistralrs.a" "$crate/lib/$lib.tmp"
mv "$crate/lib/$lib.tmp" "$crate/lib/$lib"
if ((cuda)); then
  # The CUDA kernel archives the crates' build scripts make (nvcc via cudaforge)
  # are link-time inputs a staticlib does not bundle: copy the newest of each
  # next to it (internal/bridge/bridge_cuda.go names them).
  for k in mistralrscuda mistralrsquant mistralrspagedattention moe; do
    a="$(ls -t "$CARGO_TARGET_DIR"/release/build/*/out/lib$k.a | head -1)"
    cp "$a" "$crate/lib/lib$k.a"
  done
fi

# The library's hash goes into the link and the result is checked (scripts/lib/link-engine.sh); all sections
# kept, as this engine has always been linked.
sum="$(sha256sum "$crate/lib/$lib" | cut -c1-16)"
source "$root/scripts/lib/link-engine.sh"
LINK_GC_SECTIONS=0 link_engine mistralrs "$sum" "$out/mistralrs" ./engines/mistralrs "${tags[@]}"
ls -l "$out/mistralrs" >&2
if ((cuda)); then # what travels to the GPU host: xz -9e packs it to ~23 MB (zstd -19: ~26 MB)
  tar -cf - -C "$out" mistralrs | xz -9e -T"$jobs" > "$root/.gpu/mistralrs.tar.xz.tmp"
  mv "$root/.gpu/mistralrs.tar.xz.tmp" "$root/.gpu/mistralrs.tar.xz"
  ls -l "$root/.gpu/mistralrs.tar.xz" >&2
fi
