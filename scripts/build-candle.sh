#!/usr/bin/env bash
# Builds the candle engine: the Rust bridge (static library) and the Go binary.
#
#   scripts/build-candle.sh          CPU: bin/candle and bin/candle-bench
#   scripts/build-candle.sh --cuda   CUDA 13.0, sm_90: .gpu/bin/candle, .gpu/bin/candle-bench
#                                    and .gpu/candle.tar.xz (both, stripped, for the GPU host)
#
# Cargo's target dir is ${CIB_CACHE:-$HOME/.cache/cib}/target-candle[-cuda]; CIB_JOBS
# (default: the core count) bounds cargo's parallelism. CIB_PROFILE=cibtest (scripts/test.sh)
# builds the CPU bridge in the quick-to-compile test profile into bin/cibtest/, without the bench
# example; --cuda always builds release.
set -euo pipefail
cd "$(dirname "$0")/.."

cuda=0
case "${1:-}" in
  --cuda) cuda=1 ;;
  "") ;;
  *) echo "usage: $0 [--cuda]" >&2; exit 64 ;;
esac
cache="${CIB_CACHE:-$HOME/.cache/cib}"
jobs="${CIB_JOBS:-$(nproc)}"
profile="${CIB_PROFILE:-release}"
crate=engines/candle/bridge
mkdir -p "$crate/lib"

if ((cuda)); then
  eval "$(scripts/cuda-toolkit.sh)"
  export CARGO_TARGET_DIR="$cache/target-candle-cuda" CUDAFORGE_THREADS="$jobs"
  features=(--features cuda) profile=release
  lib=libcib_candle_cuda.a out=.gpu/bin tags=(-tags cuda)
else
  export CARGO_TARGET_DIR="$cache/target-candle"
  features=() lib=libcib_candle.a out=bin tags=()
fi
bench=(--example bench)
[[ $profile == release ]] || bench=() out=bin/$profile

cargo build --profile "$profile" --locked -j"$jobs" --manifest-path "$crate/Cargo.toml" --lib "${bench[@]}" "${features[@]}"
cp "$CARGO_TARGET_DIR/$profile/libcib_candle.a" "$crate/lib/$lib"
if ((cuda)); then
  moe="$(ls -t "$CARGO_TARGET_DIR"/release/build/candle-kernels-*/out/libmoe.a | head -n1)"
  cp "$moe" "$crate/lib/libmoe.a"
fi

# Go's build cache does not track libraries named in #cgo LDFLAGS: key the
# build on the library's hash so a rebuilt crate always relinks.
hash="$(sha256sum "$crate/lib/$lib" | cut -c1-16)"
# The hash goes into the link and the result is checked (scripts/lib/link-engine.sh).
root=$PWD
source scripts/lib/link-engine.sh
link_engine candle "$hash" "$out/candle" ./engines/candle "${tags[@]}"
if ((${#bench[@]})); then
  cp "$CARGO_TARGET_DIR/release/examples/bench" "$out/candle-bench"
  strip "$out/candle-bench"
fi

if ((cuda)); then
  # xz (the GPU host has no zstd): the kernels (PTX text, SASS) shrink ~7x; unpack with tar -xJf.
  XZ_OPT="-6 -T$jobs" tar -cJf .gpu/candle.tar.xz -C "$out" candle candle-bench
  ls -l "$out/candle" "$out/candle-bench" .gpu/candle.tar.xz >&2
fi
echo "built $out/candle${bench:+ and $out/candle-bench} ($profile)" >&2
