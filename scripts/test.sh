#!/usr/bin/env bash
# Runs every test: checks the prerequisites (scripts/prereqs.sh), installs and builds what the engines need in
# CPU mode (cached under ${CIB_CACHE:-$HOME/.cache/cib}, never required to exist; the Rust bridges in the cibtest
# cargo profile, quick to compile, not release), then runs go test over every module of the workspace.
# The install and build steps are independent and run side by side, each logging to $CIB_CACHE/logs/STEP.log
# with a progress line per running step every minute. CIB_JOBS (default: the core count) bounds each build;
# CIB_JOBS=1 runs the steps one at a time. Every step's time is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export CIB_CACHE="${CIB_CACHE:-$HOME/.cache/cib}" CIB_PROFILE=cibtest CIB_JOBS="${CIB_JOBS:-$(nproc)}"
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -Wno-deprecated-declarations}" # go-nvml's headers are noisy
# This script builds every engine, the torch venv and the SmolLM2 checkpoint the tests need, so a test that
# would skip for want of one of them (they check $CI) fails instead: a skip here is a broken build, not coverage.
export CI="${CI:-1}"
logs=$CIB_CACHE/logs
times=()
mmss() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
step() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%T)"; }

declare -A pid=() began=()
# launch NAME CMD... starts CMD in its own process group, its output in $logs/NAME.log.
launch() {
  local name=$1
  shift
  setsid "$@" >"$logs/$name.log" 2>&1 &
  pid[$name]=$! began[$name]=$SECONDS
  printf '=== %s: started (%s), log %s\n' "$name" "$(date -u +%T)" "$logs/$name.log"
}
# settle waits for every launched step, printing each running step's last log line every minute; on a
# failure it shows that step's log tail, stops the others and fails.
settle() {
  local name rc polls=0
  while ((${#pid[@]})); do
    sleep 5
    for name in "${!pid[@]}"; do
      ! kill -0 "${pid[$name]}" 2>/dev/null || continue
      rc=0
      wait "${pid[$name]}" || rc=$?
      unset "pid[$name]"
      times+=("$name $(mmss $((SECONDS - began[$name])))")
      if ((rc)); then
        printf '=== %s: FAILED (exit %d), end of %s:\n' "$name" "$rc" "$logs/$name.log" >&2
        tail -n 40 "$logs/$name.log" >&2
        exit 1
      fi
      printf '=== %s: done in %s (%s)\n' "$name" "$(mmss $((SECONDS - began[$name])))" "$(date -u +%T)"
    done
    ((++polls % 12)) || for name in "${!pid[@]}"; do
      printf '... %s %s: %s\n' "$name" "$(mmss $((SECONDS - began[$name])))" "$(tail -n1 "$logs/$name.log" | cut -c1-100)"
    done
  done
}
# finish stops any step still running and prints every step's time, also after a failure.
finish() {
  for p in "${pid[@]}"; do kill -- "-$p" 2>/dev/null || true; done
  step "times"
  printf '  %s\n' "${times[@]}" "total $(mmss "$SECONDS")"
}
trap finish EXIT

step "prerequisites"
scripts/prereqs.sh

step "formatting (gofmt, rustfmt)"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
[[ -z $unformatted ]] || { echo "gofmt: not formatted:" $unformatted >&2; exit 1; }
for d in engines/*/bridge; do
  if [[ -f $d/Cargo.toml ]] && ! (cd "$d" && cargo fmt --check >/dev/null); then
    echo "rustfmt: $d is not formatted (run cargo fmt there)" >&2
    exit 1
  fi
done

step "install and build (CPU, CIB_JOBS=$CIB_JOBS)"
mkdir -p "$logs"
start=$SECONDS
# Longest first: with fewer cores than steps, the longest build sets the pace.
for e in mistralrs burn llamacpp candle lmrs; do
  if [[ -x scripts/build-$e.sh ]]; then
    launch "$e" "scripts/build-$e.sh"
    ((CIB_JOBS > 1)) || settle
  fi
done
[[ ! -x scripts/setup-torch.sh ]] || { launch torch scripts/setup-torch.sh; ((CIB_JOBS > 1)) || settle; }
# The CUPTI tracer (runner bench --profile kernels) builds with gcc against CUDA 13.0's headers from PyPI.
[[ ! -x scripts/build-cupti-profiler.sh ]] || launch cupti-profiler scripts/build-cupti-profiler.sh bin/cibtest
launch go-binaries go build -o bin/ ./runner ./engines/reference ./engines/pytorch
settle
[[ ! -x scripts/setup-torch.sh ]] || { CIB_PYTHON="$(scripts/setup-torch.sh)" && export CIB_PYTHON; }
# The libtorch bridge compiles (g++, about a minute) against that venv and the CUDA headers the cupti step fetched.
if [[ -x scripts/build-libtorch.sh ]]; then
  lt=$SECONDS
  scripts/build-libtorch.sh >"$logs/libtorch.log" 2>&1 || { tail -n 40 "$logs/libtorch.log" >&2; exit 1; }
  times+=("libtorch bridge (after the torch venv) $(mmss $((SECONDS - lt)))")
fi
times+=("install and build, side by side (wall) $(mmss $((SECONDS - start)))")

step "real-weights checkpoint (SmolLM2-135M-Instruct Q4_1 GGUF, cached under \$CIB_CACHE/smollm2)"
# runner/internal/gguf's TestSmolLM2Parity reads it; without it (no network) that test skips with a message.
if CIB_SMOLLM2_GGUF="$(scripts/fetch-smollm2.sh)"; then
  export CIB_SMOLLM2_GGUF
else
  echo "SmolLM2 GGUF download failed: TestSmolLM2Parity will skip" >&2
fi

step "go vet, go test"
start=$SECONDS
# Every module of the workspace (go.work's use list), so a new module is tested without editing this line.
pkgs=()
for d in $(go work edit -json | python3 -c 'import json,sys; print(" ".join(u["DiskPath"] for u in json.load(sys.stdin)["Use"]))'); do
  pkgs+=("${d%/}/...")
done
trap 'times+=("go vet + go test $(mmss $((SECONDS - start)))"); finish' EXIT
go vet "${pkgs[@]}"
go test -count=1 -timeout 45m "${pkgs[@]}"
