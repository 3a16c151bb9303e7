#!/usr/bin/env bash
# Runs every test: installs and builds what the engines need in CPU mode
# (cached under ${CIB_CACHE:-$HOME/.cache/cib}, never required to exist),
# then runs go test over every module of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
export CIB_CACHE="${CIB_CACHE:-$HOME/.cache/cib}"
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -Wno-deprecated-declarations}" # go-nvml's headers are noisy
step() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step "formatting (gofmt, rustfmt)"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
[[ -z $unformatted ]] || { echo "gofmt: not formatted:" $unformatted >&2; exit 1; }
for d in engines/*/bridge; do
  if [[ -f $d/Cargo.toml ]] && ! (cd "$d" && cargo fmt --check >/dev/null); then
    echo "rustfmt: $d is not formatted (run cargo fmt there)" >&2
    exit 1
  fi
done

step "go binaries"
go build -o bin/ ./runner ./engines/reference
for e in pytorch; do
  if [[ -d engines/$e ]]; then go build -o bin/ "./engines/$e"; fi
done
if [[ -x scripts/setup-torch.sh ]]; then
  step "torch (CPU) for the pytorch engine"
  CIB_PYTHON="$(scripts/setup-torch.sh)"
  export CIB_PYTHON
fi
for e in candle burn mistralrs; do
  if [[ -x scripts/build-$e.sh ]]; then
    step "build $e (CPU)"
    "scripts/build-$e.sh"
  fi
done

step "go vet, go test"
pkgs=(./protocol/... ./runner/...)
for d in engines/*/; do pkgs+=("./${d}..."); done # one pattern per engine module
go vet "${pkgs[@]}"
go test -count=1 -timeout 45m "${pkgs[@]}"
