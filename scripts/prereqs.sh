#!/usr/bin/env bash
# Checks what scripts/test.sh needs but does not install, and says how to install each missing piece
# (Debian/Ubuntu package names). Exit 1 if anything is missing. Registries (proxy.golang.org, crates.io,
# pypi.org) are only warned about: a warm cache needs none of them.
set -euo pipefail
cache=${CIB_CACHE:-$HOME/.cache/cib}
missing=()
need() { command -v "$1" >/dev/null || missing+=("$1: $2"); }

need go "Go >= 1.26 from https://go.dev/dl"
need cargo "Rust from https://rustup.rs"
need cc "a C compiler: apt-get install gcc"
need git "apt-get install git"
need strip "apt-get install binutils"
need sha256sum "apt-get install coreutils"
need setsid "apt-get install util-linux"
need python3 "apt-get install python3"
if command -v go >/dev/null; then
  v=$(go env GOVERSION) # go1.26.8
  minor=${v#go1.} minor=${minor%%.*}
  ((minor >= 26)) || missing+=("go: $v is older than 1.26 (https://go.dev/dl)")
fi
if command -v cargo >/dev/null && ! cargo fmt --version >/dev/null 2>&1; then
  missing+=("rustfmt: rustup component add rustfmt")
fi
if command -v python3 >/dev/null && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing+=("python3 venv: apt-get install python3-venv")
fi
# Measured from empty (2026-12-01): torch venv 4.2 GB, Rust target dirs, cargo and Go caches; 9 GB leaves room.
dir=$cache
while [[ ! -d $dir ]]; do dir=$(dirname "$dir"); done
free_gb=$(($(df -Pk "$dir" | awk 'NR==2 {print $4}') / 1024 / 1024))
if [[ ! -d $cache ]] && ((free_gb < 9)); then
  missing+=("disk: ${free_gb} GB free under $dir, a first run needs ~9 GB (set CIB_CACHE elsewhere)")
fi

if ((${#missing[@]})); then
  echo "scripts/test.sh needs:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi
if command -v python3 >/dev/null; then
  python3 - <<'PY' >&2 || true
import urllib.request
for url in ("https://proxy.golang.org/", "https://index.crates.io/config.json", "https://pypi.org/simple/torch/"):
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10)
    except Exception as e:
        print(f"warning: cannot reach {url} ({e}); a cold cache needs it")
PY
fi
echo "prerequisites: ok (${free_gb} GB free under $dir)"
