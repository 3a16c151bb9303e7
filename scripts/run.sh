#!/usr/bin/env bash
# The main job: build the runner and the reference engine, then benchmark.
# With no arguments it runs the embedded smoke config (a tiny generated model
# on CPU, the reference engine at 1 vs 2 threads); any arguments go to runner.
# Works from any directory: it runs in the repository root, and paths given
# as arguments are taken relative to the directory you typed them in.
set -euo pipefail
here=$PWD
cd "$(dirname "$0")/.."
# go-nvml's header marks functions deprecated and cgo's prologue calls them: a cgo flag of go-nvml's own
# package would be needed to silence that, and a module cannot set one for a dependency, so the scripts do.
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -Wno-deprecated-declarations}"
go build -buildvcs=true -o bin/ ./runner ./engines/reference
args=() prev=""
for a in "$@"; do
  case $prev in
  --config | -c | --model | --out | --bin-dir) [[ $a == /* ]] || a="$here/$a" ;; # a path, existing or not
  *)
    if [[ $a == --*=* ]]; then
      k=${a%%=*} v=${a#*=}
      case $k in --config | --model | --out | --bin-dir) [[ $v == /* ]] || a="$k=$here/$v" ;; esac
    elif [[ $a != -* && $a != /* && -e $here/$a && $here != "$PWD" ]]; then
      a="$here/$a" # report DIR, compare A B, …
    fi
    ;;
  esac
  args+=("$a")
  prev=$a
done
exec bin/runner "${args[@]}"
