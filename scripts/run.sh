#!/usr/bin/env bash
# The main job: build the runner and the reference engine, then benchmark.
# With no arguments it runs the embedded smoke config (a tiny generated model
# on CPU, the reference engine at 1 vs 2 threads); any arguments go to runner.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/ ./runner ./engines/reference
exec bin/runner "$@"
