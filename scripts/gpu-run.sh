#!/usr/bin/env bash
# Runs on the GPU host, from the repository root, with $OUT set (device tool):
# unpacks .gpu/bundle.tar.xz (once per machine), synthesizes the models it
# needs (weights never travel), then runs the stages named on the command line.
# Everything a stage writes is packed into $OUT/<stage>.tar.gz; the combined
# log is $OUT/log.txt (the device tool brings back at most 8 files).
#   scripts/gpu-run.sh STAGE...              run the stages now, inside this call
#   scripts/gpu-run.sh --detach STAGE...     run them in a queue that outlives the call (while the machine is held)
#   PARALLEL=1 scripts/gpu-run.sh --detach … a queue beside the main one: one-time preparations only, never measurements
#   (KEY=VALUE among the stages sets a knob for the stages after it)
#   scripts/gpu-run.sh --collect [SECONDS]   wait up to SECONDS for the queues, bring back queues.tar.gz (and with
#                                            PACK_INDUCTOR=1 torch's compile cache in parts, for the next machine's .gpu/;
#                                            PACK_AOTI=1 libtorch's exported packages, aoti.tar.xz.partKofN, the same way)
# The runner does the work (`runner conformance`, `bench`, `suite`, `adapter`, each engine's `prepare`); this script
# only unpacks, keeps engine caches between calls and runs a queue longer than one call (after a preflight: each bench
# and suite stage as `runner bench|suite --dry-run`, so a mistake in a late stage costs seconds). Stages:
#   smoke            GPU facts, bandwidth probe, conformance of every engine on cuda:0 bf16 (CONF_ENGINES)
#   bench            runner bench of CONFIG (configs/decode-tinyllama.yaml) on the SHAPE model (tinyllama-1.1b):
#                    ENGINE_LIST (ENGINE[:key=value[:key=value]] entries, eager/compiled for pytorch's modes; empty: the
#                    config's engines), BENCH_FLAGS (e.g. --launches 3, --profile kernels, --device cpu --dtype f32);
#                    END_AT (epoch seconds) or STAGE_TIMEOUT stop it like Ctrl-C, keeping every finished launch.
#                    burn's prepare tunes into cubecl's store, which comes back as $OUT/cubecl-cache.tar.xz
#   suite            runner suite configs/suite-h200.yaml, resumed by each later call on a warm machine (SUITE_MODELS,
#                    SUITE_BUDGET 7m, SUITE_TIMEOUT 540 s — longer in a detached queue —, SUITE_CONFIG, SUITE_CELLS: at
#                    most that many cells in this stage, a session's share of the matrix; SUITE_FLAGS: more runner suite
#                    flags, e.g. --engines/--workloads; SUITE_ADD: models to add to a resumed suite); $OUT/suite.tar.gz,
#                    also from every --collect: kept as .gpu/suite.tar.gz, the next machine resumes it
#   adapter          `runner adapter` (the engine's own decode loop against runner launches, interleaved on the card, ±3%)
#                    of ADAPTER="ENGINE[:key=value]:SHAPE ..." (default candle:tinyllama-1.1b), ROUNDS (2), WARMUP (2), ITERS (5),
#                    ADAPTER_FLAGS (more flags, e.g. --native-spin; --device cpu --dtype f32 for a dry run)
#   wait             until the PARALLEL=1 queue has finished (before a stage that measures)
#   telemetry        real-NVML tests (TELEMETRY_TESTS=0 skips them) and, with TELEMETRY_BENCH=1, the sampler's observer
#                    effect on TELEMETRY_ENGINES over TELEMETRY_MODES and TELEMETRY_ROUNDS (scripts/gpu/telemetry.sh)
# Examples: the kernel profile is `BENCH_FLAGS="--profile kernels --launches 1" ENGINE_LIST="eager compiled" … bench`;
# the launch-level verdicts `CONFIG=configs/verdicts-tinyllama.yaml ENGINE_LIST= … bench`; the 8B
# `SHAPE=llama-3-8b CONFIG=configs/decode.yaml … bench`; libtorch next to pytorch
# `ENGINE_LIST="libtorch libtorch:cuda_graph=off compiled eager" … bench`; lmrs on the host's CPU
# `ENGINE_LIST="lmrs lmrs:quant=q8_0 reference" BENCH_FLAGS="--device cpu --dtype f32" … bench` after `runner cpu probe`.
# Stages deleted since (their findings live in results/*/README.md, the scripts in git history): gpus0, bench-tiny,
# bench-8b, profile, verdicts, native, libtorch (scripts/gpu/libtorch.sh), lmrs (scripts/gpu/lmrs.sh) and burn-tune
# (burn's cold autotune pass, results/h200-2026-12-02-s5 and -s6; last in commit 88d32bb) — each a `bench` or
# `adapter` with other settings, or a one-off investigation.
set -euo pipefail
: "${OUT:?}"
W=/tmp/cib
export BIN=$W/bin MODELS=$W/models
mkdir -p "$W" "$MODELS"
# Unpack each carried archive once per machine (a warm machine keeps /tmp/cib between
# calls, and a later call may carry other archives): bundle.tar.xz first, then the
# others override it (e.g. go.tar.xz). A marker per archive content says it is done.
# An archive too big to travel beside the tree (llama.cpp's CUDA build: 41 MB, with the 27 MB tree over the 64 MiB a
# call carries) comes split by scripts/gpu-bundle.sh as NAME.tar.xz.partKofN, a part per call: the parts gather in
# $W/parts/ and the archive is joined there once all N have arrived (again when a newer part comes).
mkdir -p "$W/parts"
for p in .gpu/*.tar.xz.part*of*; do [[ -f $p ]] && cp "$p" "$W/parts/"; done
for p1 in "$W"/parts/*.tar.xz.part1of*; do
  [[ -f $p1 ]] || continue
  whole=${p1%.part1of*} n=${p1##*of} parts=()
  for ((k = 1; k <= n; k++)); do [[ -f $whole.part${k}of$n ]] && parts+=("$whole.part${k}of$n"); done
  if ((${#parts[@]} < n)); then echo "gpu-run: ${#parts[@]} of $n parts of $(basename "$whole") here: carry the others in the next call"; continue; fi
  stale=0
  for p in "${parts[@]}"; do [[ -f $whole && ! $p -nt $whole ]] || stale=1; done
  ((stale)) && cat "${parts[@]}" >"$whole.tmp" && mv "$whole.tmp" "$whole"
done
for a in .gpu/bundle.tar.xz .gpu/*.tar.xz "$W"/parts/*.tar.xz; do
  [[ -f $a ]] || continue
  mark=$W/unpacked-$(basename "$a")-$(cksum <"$a" | cut -d' ' -f1)
  [[ -f $mark ]] && continue
  first=$(tar -tJf "$a" | sed -n 1p) # archives hold bin/NAME, or bare NAME (extracted into bin/); sed reads it all: no SIGPIPE
  # X-noat.tar.xz (burn without autotune: the same binary names) goes to bin-noat/: BENCH_BIN=$W/bin-noat benches it.
  if [[ $a == *-noat.tar.xz ]]; then mkdir -p "$W/bin-noat" && tar -xJf "$a" -C "$W/bin-noat"
  # inductor-cache.tar.xz (an earlier machine's torch compile cache, PACK_INDUCTOR=1 --collect) goes to $W/inductor-cache/.
  elif [[ $first == inductor-cache/* ]]; then [[ -d $W/inductor-cache ]] || tar -xJf "$a" -C "$W"
  # aoti.tar.xz (libtorch's exported packages from an earlier machine, PACK_AOTI=1 --collect) goes to $W/aoti/MODEL/,
  # and into MODEL/.aoti/ once the model is there (place_aoti).
  elif [[ $first == aoti/* ]]; then tar -xJf "$a" -C "$W"
  elif [[ $first == bin/* ]]; then tar -xJf "$a" -C "$W"; else mkdir -p "$BIN" && tar -xJf "$a" -C "$BIN"; fi
  touch "$mark"
done
[[ -x $BIN/runner ]] || { echo "gpu-run: no runner in the carried .gpu/*.tar.xz" >&2; exit 1; }
# A suite longer than a session (30 device-minutes) goes on on the next machine: --collect returns the suite's
# directory as $OUT/suite.tar.gz; carried back as .gpu/suite.tar.gz it becomes this machine's $W/suite, and the suite
# stage resumes it (runner suite --resume keeps the finished cells and runs a cell half-done on another machine again).
if [[ -f .gpu/suite.tar.gz && ! -d $W/suite ]]; then
  tar -xzf .gpu/suite.tar.gz -C "$W" && echo "gpu-run: suite state from .gpu/suite.tar.gz: $(ls "$W/suite" | tr '\n' ' ')"
fi
# cubecl (burn) keeps autotune results and compiled kernels in the user cache dir, as a burn user's machine does:
# pre-warmed from the H200's committed store (results/h200-2026-12-03-s12, a superset of -s6's: both levels, TinyLlama and 8B
# shapes, 11 of TinyLlama's p2032 keys at the default level — not the
# 8B prefill at the default level, which fails in cubecl; cubecl
# keys it by device index, not card model: used on an H200 only), or CUBECL_STORE=FILE (e.g. a returned
# .gpu/cubecl-cache.tar.xz), or CUBECL_STORE=none for a cold machine; before a --detach, whose queue runs from a copy
# of scripts/ without .gpu/. The driver's JIT cache (PTX → SASS) stays on the machine (50–60 MB xz on 2026-12-02:
# over the 16 MiB a returned file may hold).
export XDG_CACHE_HOME=$W/xdg-cache CUDA_CACHE_PATH=$W/xdg-cache/nv-compute-cache CUDA_CACHE_MAXSIZE=4294967296
mkdir -p "$XDG_CACHE_HOME"
store=${CUBECL_STORE:-results/h200-2026-12-03-s12/cubecl-store.tar.xz}
if [[ -z ${CUBECL_STORE:-} ]] && ! nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | grep -q H200; then
  store=none # the committed store holds an H200's choices, which cubecl would replay on any card
fi
if [[ -f $store && ! -d $XDG_CACHE_HOME/cubecl ]]; then tar -xaf "$store" -C "$XDG_CACHE_HOME"; fi
# A queue of stages longer than one call (10 min): --detach STAGE... starts them in a new process
# session (it outlives the call while the machine is held) from a private copy of scripts/, bench.py (adapter) and
# configs/ (a later call replaces the working tree), one queue after another (flock); their outputs
# go to $W/queue/ID/. Later calls (carrying more bundles, which the unpack above adds to bin/ at
# once) run --collect [SECONDS]: it waits up to SECONDS for the queues to finish, prints their
# progress and copies what they wrote into $OUT. Neither kills anything. A detached queue lives only as long as the
# machine is held, and the device tool releases it 30 s after a call returns, queue or not (2026-12-02: a 16-minute
# burn pass was lost at minute 8 to a pause between calls): chain --collect calls back to back, and inspect
# between them inside a call, never from a pause.
Q=$W/queue
case ${1:-} in
--detach)
  shift
  # Preflight: every bench stage of the queue as `runner bench --dry-run` (seconds, nothing launched), with the knobs
  # the queue would have at that point, so a mistake in its last stage is found now, not after the stages before it
  # (2026-12-02: a roofline stage refused by the runner at minute 18). PREFLIGHT=0 skips it.
  if [[ ${PREFLIGHT:-1} == 1 ]]; then
    CIB_PREFLIGHT=1 bash scripts/gpu-run.sh "$@" || { echo "gpu-run: preflight failed (above): no queue started"; exit 2; }
  fi
  id=$(date -u +%H%M%S)
  mkdir -p "$Q/$id/tree"
  cp -r scripts configs "$Q/$id/tree/"
  # pytorch's native loop for the adapter stage (bench.py and the modules it imports, as in the repository)
  cp -r --parents engines/pytorch/bench engines/pytorch/internal/worker/py engines/torchllama "$Q/$id/tree/"
  # exec: the subshell becomes the queue, so no shell is left holding this call's stdout (2026-12-02: a `--detach … | tail`
  # returned only when the queue ended — 4 minutes of a session's device time, and a call cut at its limit).
  # PARALLEL=1: a queue beside the others, on a lock of its own, that stops no leftovers — for one-time preparations
  # (libtorch's export, burn's autotune: mostly host-side compilation) while the main queue prepares something else;
  # never for measurements, which must have the card alone (the runner waits for an idle GPU before each launch).
  lock=$Q.lock
  [[ ${PARALLEL:-0} != 1 ]] || lock=$Q-parallel.lock
  (cd "$Q/$id/tree" && exec setsid nohup flock "$lock" env OUT="$Q/$id" CIB_QUEUED=1 CIB_PARALLEL="${PARALLEL:-0}" bash scripts/gpu-run.sh "$@" >"$Q/$id.nohup" 2>&1 </dev/null) &
  sleep 2
  echo "gpu-run: queue $id started detached: $* (log $Q/$id/log.txt; running queues: $(pgrep -fc 'CIB_QUEUED=1' || true))"
  exit 0
  ;;
--collect)
  wait_s=${2:-0} t0=$(date +%s)
  idle() { flock -n "$Q.lock" true && flock -n "$Q-parallel.lock" true; }
  while (($(date +%s) - t0 < wait_s)) && ! idle; do sleep 10; done
  idle && echo "gpu-run: no queue running" || echo "gpu-run: a queue is still running"
  for d in "$Q"/*/; do
    [[ -d $d ]] || continue
    id=$(basename "$d")
    echo "=== queue $id: $(grep -c '^=== stage' "$d/log.txt" 2>/dev/null || echo 0) stages begun"
    tail -n "${TAIL:-25}" "$d/log.txt" 2>/dev/null | cut -c1-300 || true # a queue waiting for its turn has no log yet
  done
  # One archive of every queue's outputs (logs and stage archives): $OUT takes 8 files, 16 MiB each. The stores a
  # queue packed (pack_store: ~10 MB) comes back beside it, the newest.
  newest=$(ls -t "$Q"/*/cubecl-cache.tar.xz 2>/dev/null | head -n1 || true)
  [[ -z $newest ]] || cp "$newest" "$OUT/cubecl-cache.tar.xz"
  # PACK_INDUCTOR=1: torch's compile cache (Inductor's FX graphs, Triton kernels and their coordinate-descent
  # .best_config files, $W/inductor-cache) for the next machine, which then prepares pytorch compiled from it instead of
  # compiling and tuning again (s7: 158 s for TinyLlama's first compile on a fresh H200, 28 s from the cache). In parts
  # of 15 MiB (a returned file holds 16 MiB): keep them in .gpu/ as they come, one per carried call, as gpu-bundle.sh's.
  # ship NAME TAR-ARGS…: $W/NAME.tar.xz of TAR-ARGS, into $OUT in parts of 15 MiB (a returned file holds 16 MiB).
  ship() {
    local name=$1
    shift
    XZ_OPT="-6 -T0" tar -cJf "$W/$name.tar.xz" "$@"
    source scripts/lib/parts.sh
    echo "gpu-run: $name: $(stat -c %s "$W/$name.tar.xz") bytes of xz in $(split_parts "$W/$name.tar.xz" $((15 << 20)) "$OUT/$name.tar.xz") part(s)"
  }
  if [[ ${PACK_INDUCTOR:-0} == 1 && -d $W/inductor-cache ]]; then
    echo "gpu-run: inductor cache $(du -sh "$W/inductor-cache" | cut -f1)"
    ship inductor-cache -C "$W" inductor-cache
  fi
  # PACK_AOTI=1: libtorch's exported packages (8.4 MB for the 8B; no weights: the weights file is rewritten from the
  # model in seconds), for the next machine's .gpu/, as the Inductor cache: saves each package's export there.
  if [[ ${PACK_AOTI:-0} == 1 ]] && ls "$MODELS"/*/.aoti/*.pt2 >/dev/null 2>&1; then
    ship aoti -C "$MODELS" --transform 's,^\([^/]*\)/\.aoti/,aoti/\1/,' $(cd "$MODELS" && ls -d */.aoti/*.pt2 */.aoti/*.kernels.json 2>/dev/null)
  fi
  # The suite as it stands (finished cells and launches), for the next machine should this one go (.gpu/suite.tar.gz).
  [[ ! -d $W/suite ]] || tar -czf "$OUT/suite.tar.gz" -C "$W" --warning=no-file-changed suite || true
  [[ ! -d $Q ]] || tar -czf "$OUT/queues.tar.gz" -C "$Q" --exclude=tree --exclude='*-cache.tar.xz' --warning=no-file-changed . || true # logs still growing: exit 1
  ls -l "$OUT"/*.tar.gz 2>/dev/null || true # queues.tar.gz and suite.tar.gz, where there were any
  nvidia-smi --query-gpu=uuid,memory.used,utilization.gpu --format=csv,noheader
  df -h /tmp | tail -n1
  exit 0
  ;;
esac
export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CIB_CACHE=$W/cache CIB_PYTHON=${CIB_PYTHON:-python3} PYTHONUNBUFFERED=1
export TORCHINDUCTOR_CACHE_DIR=$W/inductor-cache
CIB_GIT_COMMIT=$(cat "$BIN/COMMIT" 2>/dev/null || true)
export CIB_GIT_COMMIT
pre=${CIB_PREFLIGHT:-0} preflight_failed=0
((pre)) || exec > >(tee -a "$OUT/log.txt") 2>&1
# A warm machine may still run an engine that an earlier call's time limit cut off (the
# device tool ends the command, not always its children): it would share the GPU with
# everything measured here (and hold cubecl's store). Stop our own leftovers, by PID: processes whose command *starts*
# with one of our binaries (2026-12-02: an unanchored match also hit the caller's shell, whose command line named one).
((pre)) || [[ ${CIB_QUEUED:-0} == 1 ]] || flock -n "$Q.lock" true || { echo "gpu-run: a detached queue is running: run --collect, or wait"; exit 3; }
((pre)) || [[ ${CIB_PARALLEL:-0} == 1 ]] || ! flock -n "$Q-parallel.lock" true || for pid in $(pgrep -f "^$W/bin[^/ ]*/(burn|candle|mistralrs|pytorch|reference|runner|llamacpp|libtorch|lmrs)(-bench)?( |$)" || true); do
  echo "gpu-run: stopping leftover $(ps -o pid=,etime=,args= -p "$pid" | cut -c1-160)"
  kill "$pid" 2>/dev/null || true
done
((pre)) || nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader | sed 's/^/gpu-run: compute process at start: /'
engines=()
for e in pytorch candle burn mistralrs llamacpp libtorch; do [[ -x $BIN/$e ]] && engines+=("$e"); done
synth() { # under a lock per model: the main and the PARALLEL=1 queue may both want it (the second waits, then finds it)
  flock "$MODELS/.synth-$1.lock" bash -c '[[ -f $1/config.json ]] || "$2" models synth --shape "$3" --dtype bf16 --out "$1"' \
    _ "$MODELS/$1" "$BIN/runner" "$1"
  place_aoti "$1"
}
# place_aoti MODEL: libtorch packages an earlier H200 exported for this (synthesized, so identical) model, into its
# cache dir, where libtorch's prepare finds them by key and writes only the weights file (seconds, not 2.5-4.5 minutes of
# export per batch size); a package whose key does not match (another torch, card or export code) is never used.
place_aoti() {
  [[ -d $W/aoti/$1 && -f $MODELS/$1/config.json ]] || return 0
  mkdir -p "$MODELS/$1/.aoti" && cp -n "$W/aoti/$1"/* "$MODELS/$1/.aoti/" && echo "gpu-run: $1: carried libtorch packages: $(ls "$W/aoti/$1" | grep -c '\.pt2$')"
}
list() { # ENGINE_LIST (default: $1) as --engines wants it: the entries whose binary is in the bundle; eager/compiled are pytorch's modes
  local l=() e
  for e in ${ENGINE_LIST-$1}; do
    case $e in eager | compiled) e=pytorch:mode=$e ;; esac
    if [[ -x ${BENCH_BIN:-$BIN}/${e%%:*} ]]; then l+=("$e"); else echo "gpu-run: $e left out: no ${e%%:*} in ${BENCH_BIN:-$BIN}" >&2; fi
  done
  (IFS=,; echo "${l[*]}")
}
pack_store() { # cubecl's store, for the next machine (.gpu/cubecl-cache.tar.xz): xz, as its compiled kernels make it
  # ~280 MB unpacked (xz 9.6 MB on 2026-12-02) and a file back from $OUT may hold 16 MiB
  XZ_OPT="-6 -T0" tar -cJf "$OUT/cubecl-cache.tar.xz" -C "$XDG_CACHE_HOME" cubecl 2>/dev/null && ls -l "$OUT/cubecl-cache.tar.xz"
}
bench() { # runner bench of $CONFIG on $MODELS/$SHAPE, engines: list
  local shape=${SHAPE:-tinyllama-1.1b} engines
  engines=$(list "${1:-}")
  if ((pre)); then # the model may not be there yet: the dry run is told how the stage would synthesize it
    local m=(--model "$MODELS/$shape")
    [[ -f $MODELS/$shape/config.json ]] || m=(--set "model=$MODELS/$shape" --set "synth.shape=$shape" --set synth.dtype=bf16 --set synth.seed=1)
    "$BIN/runner" bench --bin-dir "${BENCH_BIN:-$BIN}" --config "${CONFIG:-configs/decode-tinyllama.yaml}" "${m[@]}" \
      ${engines:+--engines "$engines"} --out "$S" ${BENCH_FLAGS:-} --dry-run || preflight_failed=1
    return
  fi
  synth "$shape"
  # (llama.cpp's GGUF conversion and libtorch's export run before the first launch: the runner's `ENGINE prepare`.)
  # STAGE_TIMEOUT (e.g. 240s) interrupts the runner like Ctrl-C: it kills the
  # running engine and still writes the report of every finished launch.
  # END_AT (epoch seconds) does the same at a fixed time: what finished comes back before the machine does.
  local lim=${STAGE_TIMEOUT:-0}
  [[ -n ${END_AT:-} ]] && lim=$((END_AT - $(date +%s)))s
  timeout --signal=INT --kill-after=30 "$lim" \
    "$BIN/runner" bench --bin-dir "${BENCH_BIN:-$BIN}" --config "${CONFIG:-configs/decode-tinyllama.yaml}" --model "$MODELS/$shape" \
    ${engines:+--engines "$engines"} --out "$S" ${BENCH_FLAGS:-} || echo "runner exit $?"
  # burn's prepare tunes into cubecl's store: bring it back for the next machine (.gpu/cubecl-cache.tar.xz).
  [[ $engines != *burn* ]] || pack_store
}

# Stages run in this call get the same preflight as a detached queue's when there are several (a queue ran its own).
if ((!pre)) && [[ ${CIB_QUEUED:-0} != 1 && ${PREFLIGHT:-1} == 1 ]] && (($(printf '%s\n' "$@" | grep -cxE 'bench|suite') > 1)); then
  (CIB_PREFLIGHT=1 bash "$0" "$@") >"$W/preflight.log" 2>&1 || { cat "$W/preflight.log"; echo "gpu-run: preflight failed: no stage run (PREFLIGHT=0 skips it)"; exit 2; }
fi
# DEADLINE=seconds from now: stages that would start in its last STAGE_MIN (60) seconds
# are skipped, so what finished comes back inside the device tool's limit.
end=$(($(date +%s) + ${DEADLINE:-100000}))
for stage in "$@"; do
  # KEY=VALUE between stages sets it for the stages after it: one queue runs a session's plan back to back, e.g.
  #   --detach CONFIG=configs/determinism-tinyllama.yaml bench CONFIG=configs/roofline-8b.yaml SHAPE=llama-3-8b bench
  if [[ $stage =~ ^[A-Z_][A-Z0-9_]*= ]]; then export "$stage" && echo "=== $stage"; continue; fi
  if (($(date +%s) + ${STAGE_MIN:-60} > end)); then echo "=== stage $stage skipped: deadline"; continue; fi
  S=$W/out/$stage
  mkdir -p "$S"
  echo "=== ${CIB_PREFLIGHT:+preflight of }stage $stage ($(date -u +%H:%M:%S))"
  if ((pre)) && [[ $stage != bench && $stage != suite ]]; then echo "(not checked: only bench and suite stages have a dry run)"; continue; fi
  case $stage in
  smoke)
    nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,power.limit,clocks.max.sm,clocks.max.mem --format=csv
    "$BIN/runner" gpu info
    "$BIN/runner" gpu probe || echo "PROBE FAILED"
    "$BIN/runner" engines --bin-dir "$BIN"
    for e in ${CONF_ENGINES:-${engines[*]}}; do
      [[ -x $BIN/$e ]] || continue
      echo "=== conformance $e (cuda:0, bf16, tiny shape)"
      "$BIN/runner" conformance --bin-dir "$BIN" --device cuda:0 --dtype bf16 "$e" || echo "CONFORMANCE FAILED: $e"
    done
    ;;
  wait)
    # the PARALLEL=1 queue's preparations done, so that what follows has the card alone
    flock "$Q-parallel.lock" true && echo "parallel queue done ($(date -u +%H:%M:%S))"
    ;;
  telemetry)
    synth tinyllama-1.1b
    OUT=$S TELEMETRY_BENCH=${TELEMETRY_BENCH:-0} TELEMETRY_TESTS=${TELEMETRY_TESTS:-1} scripts/gpu/telemetry.sh || echo "TELEMETRY FAILED"
    ;;
  adapter)
    # runner adapter: the engine's own decode loop (candle-bench, burn-bench, bench.py, mistralrs native) against
    # runner launches of the same weights and prompt, alternated on the card; a verdict line per metric (exit 4: outside ±3%).
    list=${ADAPTER:-candle:tinyllama-1.1b}
    for x in $list; do
      e=${x%:*} s=${x##*:}
      [[ -x $BIN/${e%%:*} ]] || { echo "adapter: no ${e%%:*} in the bundle"; continue; }
      synth "$s"
      "$BIN/runner" adapter "$e" --model "$MODELS/$s" --bin-dir "$BIN" --rounds "${ROUNDS:-2}" --warmup "${WARMUP:-2}" \
        --iterations "${ITERS:-5}" --out "$S" ${ADAPTER_FLAGS:-} || echo "ADAPTER $x: exit $? (4: outside ±3%)"
    done
    ;;
  bench) bench ;;
  suite)
    # configs/suite-h200.yaml (every engine × TinyLlama/8B × three workloads), resumable: the first call starts it,
    # later calls on the warm machine resume it; SUITE_MODELS (e.g. tinyllama-1.1b) limits a new suite, SUITE_BUDGET
    # (7m) stops it between launches so what finished comes back inside the call.
    d=$(ls -d "$W"/suite/*-"$(basename "${SUITE_CONFIG:-configs/suite-h200.yaml}" .yaml)" 2>/dev/null | tail -n1 || true)
    if ((pre)); then
      if [[ -n $d ]]; then echo "(resumes $d: not checked)"; else
        (cd "$W" && "$BIN/runner" suite "$OLDPWD/${SUITE_CONFIG:-configs/suite-h200.yaml}" --bin-dir "$BIN" ${SUITE_MODELS:+--models $SUITE_MODELS} --dry-run) || preflight_failed=1
      fi
      continue
    fi
    # The models first (the suite would synthesize them the same way: bf16, seed 1), so carried libtorch packages are
    # in place before libtorch's prepare looks for them.
    ms=${SUITE_MODELS:-tinyllama-1.1b,llama-3-8b}
    [[ -n ${SUITE_CONFIG:-} ]] || for m in ${ms//,/ }; do synth "$m"; done
    # END_AT (epoch seconds) instead of SUITE_BUDGET: the budget is what is left until then, for a queue whose suite
    # starts after stages of unknown length (the machine goes at a fixed time: the session's device budget).
    budget=${SUITE_BUDGET:-7m} lim=${SUITE_TIMEOUT:-540}
    [[ -z ${END_AT:-} ]] || budget=$((END_AT - $(date +%s) - 30))s lim=$((END_AT - $(date +%s)))
    (
      cd "$W"
      if [[ -n $d ]]; then
        # SUITE_ADD (e.g. llama-3-8b): models of the config that a suite begun with SUITE_MODELS lacks, added once
        # (runner suite --add-models) as cells after its own.
        add=""
        sa=${SUITE_ADD:-}
        for m in ${sa//,/ }; do grep -q "name: $m\$" "$d/suite.yaml" || add+=${add:+,}$m; done
        timeout -s INT --kill-after=30 "$lim" "$BIN/runner" suite --resume "$d" --bin-dir "$BIN" --stop-after "$budget" ${SUITE_CELLS:+--max-cells $SUITE_CELLS} \
          ${add:+--add-models "$OLDPWD/${SUITE_CONFIG:-configs/suite-h200.yaml}" --models "$add"} ${SUITE_FLAGS:-}
      else
        timeout -s INT --kill-after=30 "$lim" "$BIN/runner" suite "$OLDPWD/${SUITE_CONFIG:-configs/suite-h200.yaml}" --bin-dir "$BIN" --out "$W/suite" \
          ${SUITE_MODELS:+--models $SUITE_MODELS} --stop-after "$budget" ${SUITE_CELLS:+--max-cells $SUITE_CELLS} ${SUITE_FLAGS:-}
      fi
    ) || echo "suite exit $?"
    tar -czf "$OUT/suite.tar.gz" -C "$W" suite
    [[ ! -x $BIN/burn ]] || pack_store # burn's prepare tuned the suite's shapes into cubecl's store: for the next machine
    ;;
  *) echo "unknown stage $stage" >&2 ;;
  esac
  ((pre)) || tar -czf "$OUT/$stage.tar.gz" -C "$W/out" "$stage"
done
if ((pre)); then exit $((preflight_failed ? 2 : 0)); fi
echo "=== done ($(date -u +%H:%M:%S))"
