#!/usr/bin/env bash
# Builds everything the GPU host runs, here (it has no Go or Rust): the runner
# and Go engines, and the CUDA builds of the Rust engines (nvcc 13.0.88 from
# PyPI, sm_90), into .gpu/bundle.tar.xz (the GPU host has no zstd). Pass the device tool
# carry: [".gpu/bundle.tar.xz"].   ENGINES="candle burn" limits the Rust builds.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu/bin
commit=$(git rev-parse HEAD)
[[ -z $(git status --porcelain --untracked-files=no) ]] || commit="$commit-dirty"
echo "$commit" > .gpu/bin/COMMIT
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -Wno-deprecated-declarations}"
go build -trimpath -ldflags=-s -o .gpu/bin/ ./runner ./engines/reference ./engines/pytorch
go test -c -ldflags="-s -w" -o .gpu/bin/telemetry.test ./runner/internal/telemetry
for e in ${ENGINES-candle burn mistralrs}; do
  "scripts/build-$e.sh" --cuda
done
XZ_OPT=-6T2 tar -cJf .gpu/bundle.tar.xz -C .gpu bin
ls -l .gpu/bin .gpu/bundle.tar.xz
