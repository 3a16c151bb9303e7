#!/usr/bin/env bash
# Builds the llamacpp engine: llama.cpp's static libraries (scripts/build-llamacpp-lib.sh, from the sources the
# crates.io crate llama-cpp-sys-2 0.1.161 vendors), then the Go binary and the native bench (the engine's C decode
# loop with no Go and no protocol).
#
#   scripts/build-llamacpp.sh          CPU: bin/llamacpp and bin/llamacpp-bench
#   scripts/build-llamacpp.sh --cuda   CUDA 13.0, sm_90: .gpu/bin/llamacpp, .gpu/bin/llamacpp-bench, the
#                                      libcib_llama.so both load (llama.cpp + kernels, once) and .gpu/llamacpp.tar.xz
#                                      (all three, stripped, for the GPU host)
#
# The libraries and headers are copied to engines/llamacpp/lib/{cpu,cuda} (git-ignored), where cgo links them.
# CIB_JOBS (default: the core count) bounds the library build. CIB_PROFILE=cibtest (scripts/test.sh) writes
# bin/cibtest/llamacpp without the bench; the libraries are always CMake's Release build.
set -euo pipefail
cd "$(dirname "$0")/.."

cuda=0
case "${1:-}" in
  --cuda) cuda=1 ;;
  "") ;;
  *) echo "usage: $0 [--cuda]" >&2; exit 64 ;;
esac
jobs="${CIB_JOBS:-$(nproc)}"
profile="${CIB_PROFILE:-release}"
flavor=cpu out=bin tags=() libflag=() libs=(-lllama -lggml -lggml-cpu -lggml-base)
if ((cuda)); then
  flavor=cuda out=.gpu/bin tags=(-tags cuda) libflag=(--cuda) profile=release
  libs=(-lllama -lggml -lggml-cpu -lggml-cuda -lggml-base -lcublas -lcublasLt -lcudart -lcuda)
  eval "$(scripts/cuda-toolkit.sh)"
fi
[[ $profile == release ]] || out=bin/$profile
prefix="$(CIB_JOBS=$jobs scripts/build-llamacpp-lib.sh "${libflag[@]}" | tail -n1)"

# Copy the installed libraries next to the bridge when they changed.
dst=engines/llamacpp/lib/$flavor
if [[ ! -f $dst/.built || "$(cat "$dst/.built")" != "$(cat "$prefix/.built")" ]]; then
  rm -rf "$dst"
  mkdir -p "$dst/lib"
  cp -r "$prefix/include" "$dst/"
  cp "$prefix"/lib/*.a "$dst/lib/"
  cp "$prefix/.built" "$prefix/BUILD_SECONDS" "$dst/"
fi

# CUDA: cib_llama.c and the libraries as one shared object that the engine and the bench both load (rpath
# $ORIGIN), so the ~60 MB of kernels ship once.
bridge=engines/llamacpp/internal/bridge
rpath=()
if ((cuda)); then
  gcc -shared -fPIC -O2 -std=c11 -Wall -I"$dst/include" "$bridge/cib_llama.c" -L"$dst/lib" "${libs[@]}" \
    -lstdc++ -lgomp -lm -ldl -lpthread -Wl,--gc-sections -Wl,-rpath,/usr/local/cuda/lib64 -o "$dst/lib/libcib_llama.so"
  libs=(-lcib_llama -lcublas -lcublasLt -lcudart -lcuda) rpath=(-Wl,-rpath,'$ORIGIN' -Wl,-rpath,/usr/local/cuda/lib64)
  # beside the binaries before the link: link_engine runs `llamacpp info`, which loads it through $ORIGIN
  mkdir -p "$out" && cp "$dst/lib/libcib_llama.so" "$out/"
fi

# Go's build cache does not track libraries named in #cgo LDFLAGS: key the
# build on the libraries' hash so a rebuilt llama.cpp always relinks.
hash="$(cat "$dst"/lib/*.a "$bridge/cib_llama.c" | sha256sum | cut -c1-16)"
# The hash goes into the link and the result is checked (scripts/lib/link-engine.sh).
root=$PWD
source scripts/lib/link-engine.sh
CGO_CFLAGS="${CGO_CFLAGS:--O2 -Wno-deprecated-declarations}" link_engine llamacpp "$hash" "$out/llamacpp" ./engines/llamacpp "${tags[@]}"
bench=0
[[ $profile != release ]] || bench=1
if ((bench)); then
  src=(engines/llamacpp/bench/llamacpp-bench.c)
  ((cuda)) || src+=("$bridge/cib_llama.c")
  gcc -O2 -std=c11 -Wall -I"$bridge" -I"$dst/include" "${src[@]}" \
    -L"$dst/lib" "${libs[@]}" "${rpath[@]}" -lstdc++ -lgomp -lm -ldl -lpthread -Wl,--gc-sections -o "$out/llamacpp-bench"
  strip "$out/llamacpp-bench"
fi

if ((cuda)); then
  strip "$out/libcib_llama.so"
  XZ_OPT="-6 -T$jobs" tar -cJf .gpu/llamacpp.tar.xz -C "$out" llamacpp llamacpp-bench libcib_llama.so
  ls -l "$out/llamacpp" "$out/llamacpp-bench" "$out/libcib_llama.so" .gpu/llamacpp.tar.xz >&2
fi
echo "built $out/llamacpp$( ((bench)) && echo " and $out/llamacpp-bench") ($flavor, $profile; llama.cpp libraries from $prefix)" >&2
