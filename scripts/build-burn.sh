#!/usr/bin/env bash
# Builds the Burn engine: the Rust bridge (static library) and the Go binary.
#   scripts/build-burn.sh          CPU (flex backend)  -> bin/burn
#   scripts/build-burn.sh --cuda   + cubecl CUDA       -> .gpu/bin/burn, .gpu/bin/burn-bench, .gpu/burn.tar.xz, .gpu/burn-bench.tar.xz
#   scripts/build-burn.sh --cuda --no-autotune         -> .gpu/bin-noat/{burn,burn-bench}, .gpu/burn-noat.tar.xz, .gpu/burn-bench-noat.tar.xz
# The CUDA build needs no CUDA toolkit: cubecl JIT-compiles kernels with NVRTC at run
# time and cudarc dlopens libcuda/libnvrtc (CUDA 13.0 bindings pinned below).
# CIB_JOBS (default: the core count) bounds cargo's parallelism. CIB_PROFILE=cibtest (scripts/test.sh)
# builds the CPU bridge in the quick-to-compile test profile into bin/cibtest/; --cuda always builds release.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${CIB_CACHE:-$HOME/.cache/cib}
crate=$root/engines/burn/bridge
jobs=${CIB_JOBS:-$(nproc)}
profile=${CIB_PROFILE:-release}
bins=(--bin burn-bench)

if [[ ${1:-} == --cuda ]]; then
  kind=cuda features=(--features cuda,autotune) tags=(-tags cuda) out=$root/.gpu/bin archive=burn profile=release
  export CUDARC_CUDA_VERSION=13000
  target=$cache/target-burn-cuda
  if [[ ${2:-} == --no-autotune ]]; then
    # The same CUDA build without burn's autotune: into .gpu/bin-noat (archive burn-noat.tar.xz).
    features=(--features cuda) out=$root/.gpu/bin-noat archive=burn-noat target=$cache/target-burn-cuda-noat
    [[ -d $target || ! -d $cache/target-burn-cuda ]] || cp -a "$cache/target-burn-cuda" "$target" # reuse the shared crates
  fi
else
  kind=cpu features=() tags=() out=$root/bin
  [[ $profile == release ]] || out=$root/bin/$profile bins=()
  target=$cache/target-burn
fi

CARGO_TARGET_DIR=$target cargo build --profile "$profile" --locked -j"$jobs" \
  --manifest-path "$crate/Cargo.toml" "${features[@]}" --lib "${bins[@]}"
mkdir -p "$crate/lib/$kind" "$out"
cp "$target/$profile/libcib_burn.a" "$crate/lib/$kind/libcib_burn.a"

# The library's hash goes into the link and the result is checked (scripts/lib/link-engine.sh);
# --gc-sections drops the unused parts of the static library (28 MB -> 8 MB).
sum=$(sha256sum "$crate/lib/$kind/libcib_burn.a" | cut -c1-16)
source "$root/scripts/lib/link-engine.sh"
link_engine burn "$sum" "$out/burn" ./engines/burn "${tags[@]}"

if [[ $kind == cuda ]]; then
  cp "$target/release/burn-bench" "$out/burn-bench"
  # Bare names: scripts/gpu-run.sh unpacks them into its bin/ (carry one of burn, burn-noat). The engine and burn-bench
  # (needed only by `runner adapter burn`) travel apart: ~13 MB each, where a call carries 64 MiB with the tree.
  XZ_OPT="-6 -T${jobs}" tar -cJf "$root/.gpu/$archive.tar.xz" -C "$out" burn
  XZ_OPT="-6 -T${jobs}" tar -cJf "$root/.gpu/${archive/burn/burn-bench}.tar.xz" -C "$out" burn-bench
  ls -l "$out/burn" "$out/burn-bench" "$root/.gpu/$archive.tar.xz" "$root/.gpu/${archive/burn/burn-bench}.tar.xz"
else
  ls -l "$out/burn"
fi
