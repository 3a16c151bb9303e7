#!/usr/bin/env bash
# Builds the lmrs engine (CPU only, like lm.rs): the Rust bridge (static library) and the Go binary bin/lmrs.
#
#   scripts/build-lmrs.sh          bin/lmrs (release)
#   scripts/build-lmrs.sh --gpu    also .gpu/lmrs.tar.xz with the stripped binary, for the GPU host's CPU
#                                  (--cuda is the same: scripts/gpu-bundle.sh calls every engine's script so)
#   scripts/build-lmrs.sh --asm    writes the kernels' assembly to $CARGO_TARGET_DIR/lmrs-kernels.s
#
# Cargo's target dir is ${CIB_CACHE:-$HOME/.cache/cib}/target-lmrs; CIB_JOBS (default: the core count) bounds
# cargo's parallelism. CIB_PROFILE=cibtest (scripts/test.sh) builds the bridge in the test profile into
# bin/cibtest/; --gpu and --asm always build release. The kernels pick AVX-512, AVX2 or baseline code at run time,
# so one build serves both machines.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
[[ $mode != --cuda ]] || mode=--gpu
case "$mode" in
  --gpu | --asm | "") ;;
  *) echo "usage: $0 [--gpu|--cuda|--asm]" >&2; exit 64 ;;
esac
cache="${CIB_CACHE:-$HOME/.cache/cib}"
jobs="${CIB_JOBS:-$(nproc)}"
profile="${CIB_PROFILE:-release}"
[[ -z $mode ]] || profile=release
crate=engines/lmrs/bridge
export CARGO_TARGET_DIR="$cache/target-lmrs"
out=bin
[[ $profile == release ]] || out=bin/$profile

if [[ $mode == --asm ]]; then
  cargo rustc --release --locked -j"$jobs" --manifest-path "$crate/Cargo.toml" --lib --crate-type staticlib \
    -- --emit asm -C codegen-units=1
  s="$(ls -t "$CARGO_TARGET_DIR"/release/deps/cib_lmrs-*.s | head -n1)"
  cp "$s" "$CARGO_TARGET_DIR/lmrs-kernels.s"
  echo "$CARGO_TARGET_DIR/lmrs-kernels.s" >&2
  exit 0
fi

mkdir -p "$crate/lib" "$out"
cargo build --profile "$profile" --locked -j"$jobs" --manifest-path "$crate/Cargo.toml" --lib
cp "$CARGO_TARGET_DIR/$profile/libcib_lmrs.a" "$crate/lib/libcib_lmrs.a"

# The library's hash goes into the link and the result is checked (scripts/lib/link-engine.sh says why).
hash="$(sha256sum "$crate/lib/libcib_lmrs.a" | cut -c1-16)"
root=$PWD
source scripts/lib/link-engine.sh
link_engine lmrs "$hash" "$out/lmrs" ./engines/lmrs

if [[ $mode == --gpu ]]; then
  mkdir -p .gpu
  XZ_OPT="-6 -T$jobs" tar -cJf .gpu/lmrs.tar.xz -C "$out" lmrs
  ls -l "$out/lmrs" .gpu/lmrs.tar.xz >&2
fi
echo "built $out/lmrs ($profile)" >&2
