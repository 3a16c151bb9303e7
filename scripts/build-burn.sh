#!/usr/bin/env bash
# Builds the Burn engine: the Rust bridge (static library) and the Go binary.
#   scripts/build-burn.sh          CPU (flex backend)  -> bin/burn
#   scripts/build-burn.sh --cuda   + cubecl CUDA       -> .gpu/bin/burn, .gpu/bin/burn-bench, .gpu/burn.tar.xz
# The CUDA build needs no CUDA toolkit: cubecl JIT-compiles kernels with NVRTC at run
# time and cudarc dlopens libcuda/libnvrtc (CUDA 13.0 bindings pinned below).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${CIB_CACHE:-$HOME/.cache/cib}
crate=$root/engines/burn/bridge
jobs=${CARGO_BUILD_JOBS:-2}

if [[ ${1:-} == --cuda ]]; then
  kind=cuda features=(--features cuda) tags=(-tags cuda) out=$root/.gpu/bin
  export CUDARC_CUDA_VERSION=13000
else
  kind=cpu features=() tags=() out=$root/bin
fi
target=$cache/target-burn$([[ $kind == cuda ]] && echo -cuda || true)

CARGO_TARGET_DIR=$target cargo build --release --locked -j"$jobs" \
  --manifest-path "$crate/Cargo.toml" "${features[@]}" --lib --bin burn-bench
mkdir -p "$crate/lib/$kind" "$out"
cp "$target/release/libcib_burn.a" "$crate/lib/$kind/libcib_burn.a"

# The library's hash goes into the link flags so Go relinks whenever it changes;
# --gc-sections drops the unused parts of the static library (28 MB -> 8 MB).
sum=$(sha256sum "$crate/lib/$kind/libcib_burn.a" | cut -c1-16)
(cd "$root/engines/burn" && CGO_ENABLED=1 go build "${tags[@]}" -trimpath \
  -ldflags "-s -w -X main.bridgeLib=$sum -extldflags=-Wl,--gc-sections" -o "$out/burn" .)

if [[ $kind == cuda ]]; then
  cp "$target/release/burn-bench" "$out/burn-bench"
  XZ_OPT="-6 -T${jobs}" tar -cJf "$root/.gpu/burn.tar.xz" -C "$root/.gpu" bin/burn bin/burn-bench
  ls -l "$out/burn" "$out/burn-bench" "$root/.gpu/burn.tar.xz"
else
  ls -l "$out/burn"
fi
