#!/usr/bin/env bash
# Builds everything the GPU host runs, here (it has no Go or Rust), as xz archives
# (the GPU host has no zstd) that scripts/gpu-run.sh unpacks into its bin/:
#   .gpu/go.tar.xz         runner, reference, pytorch, telemetry.test, COMMIT, libcib_cupti.so
#                          (the CUPTI tracer of bench --profile, scripts/build-cupti-profiler.sh)
#   .gpu/ENGINE.tar.xz     the CUDA builds of the Rust engines and llama.cpp (nvcc 13.0.88 from PyPI, sm_90; lmrs: its
#                          CPU build), written by scripts/build-ENGINE.sh --cuda
#   .gpu/libtorch.tar.xz   libtorch + libcib_libtorch.so (scripts/build-libtorch.sh --gpu: g++ against the torch venv)
# Pass the device tool carry: [".gpu/go.tar.xz", ".gpu/candle.tar.xz", ...] (64 MiB in all); an archive over 24 MiB is
# split into NAME.tar.xz.partKofN, one part per call (gpu-run.sh joins them on the warm machine).
# ENGINES="candle burn" limits the Rust builds (ENGINES= builds only the Go archive).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu/bin
commit=$(git rev-parse HEAD)
[[ -z $(git status --porcelain --untracked-files=no) ]] || commit="$commit-dirty"
echo "$commit" > .gpu/bin/COMMIT
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -Wno-deprecated-declarations}"
go build -trimpath -ldflags=-s -o .gpu/bin/ ./runner ./engines/reference ./engines/pytorch
go test -c -ldflags="-s -w" -o .gpu/bin/telemetry.test ./runner/internal/telemetry
scripts/build-cupti-profiler.sh .gpu/bin >/dev/null
XZ_OPT=-6T2 tar -cJf .gpu/go.tar.xz -C .gpu bin/runner bin/reference bin/pytorch bin/telemetry.test bin/COMMIT bin/libcib_cupti.so
# Each build's wall time is printed: a cold machine (no cargo, CMake or venv caches) needed candle 592 s, mistral.rs
# 1748 s, lmrs 17 s, burn > 28 min (538 s resumed from a partial target), llama.cpp ~93 min under load and 2097 s on
# an idle VM (2 cores, 2026-12-02/03) — start it first thing in a session.
for e in ${ENGINES-candle burn mistralrs lmrs llamacpp libtorch}; do
  t0=$SECONDS
  "scripts/build-$e.sh" --cuda
  echo "gpu-bundle: $e built in $((SECONDS - t0)) s"
done
# An archive over SPLIT_MIB (24 MiB: the tracked tree is 38.4 MiB after session 14, 2026-12-03, and of the 64 MiB a device call carries
# 31.1 + 27.7 MiB went, 31.1 + 32.5 was refused) travels in parts,
# one per call, NAME.tar.xz.part1of2 …, which scripts/gpu-run.sh joins on the GPU host once all have arrived.
source scripts/lib/parts.sh
for a in .gpu/*.tar.xz; do
  rm -f "$a".part*of*
  max=$((${SPLIT_MIB:-24} << 20))
  (($(stat -c %s "$a") > max)) || continue
  split_parts "$a" "$max" "$a" >/dev/null && rm "$a"
done
ls -l .gpu/*.tar.xz*
