# Sourced by the engine build scripts (scripts/build-ENGINE.sh): links an engine's Go binary against the bridge
# library just built, and proves it did.
#
#   link_engine NAME HASH OUT PKG [go build flags...]
#
# Go's build cache does not track libraries named in #cgo LDFLAGS, and `go build -o` leaves an output it considers
# up to date untouched: a -DCIB_NAME_LIB=hash in CGO_CFLAGS alone did not make lmrs relink (the binary bundled on
# 2026-12-01 still had the kernels from before the AVX2 commit, measured at a quarter of the speed). So the old
# output is removed, the library's hash goes into the link (-X main.bridgeLib, which `ENGINE info` reports as
# versions.bridge_lib_sha256), and the build fails unless the new binary reports that hash.
# PKG is a package path from the repository root ($root, set by the caller). LINK_GC_SECTIONS=0 keeps every
# section of the static library (the default drops the unused ones: --gc-sections).
link_engine() {
  local name=$1 hash=$2 out=$3 pkg=$4 up ext=""
  shift 4
  up=$(tr 'a-z.-' 'A-Z__' <<<"$name")
  [[ ${LINK_GC_SECTIONS:-1} == 1 ]] && ext=" -extldflags=-Wl,--gc-sections"
  mkdir -p "$(dirname "$out")"
  rm -f "$out"
  (cd "$root" && CGO_ENABLED=1 CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -DCIB_${up}_LIB=$hash" \
    go build -trimpath -ldflags="-s -w -X main.bridgeLib=$hash$ext" "$@" -o "$out" "$pkg")
  # A CUDA build needs libcuda to start, even for info: the toolkit's stub (scripts/cuda-toolkit.sh) stands in here.
  LD_LIBRARY_PATH="${CUDA_HOME:+$CUDA_HOME/lib64:$CUDA_HOME/lib64/stubs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$out" info |
    grep -q "\"bridge_lib_sha256\": \"$hash\"" || { echo "build-$name: $out does not report library $hash (stale link?)" >&2; return 1; }
}
