#!/usr/bin/env bash
# Runs on the GPU host, from the repository root, with $OUT set (device tool):
# unpacks .gpu/bundle.tar.xz (once per machine), synthesizes the models it
# needs (weights never travel), then runs the stages named on the command line.
# Everything a stage writes is packed into $OUT/<stage>.tar.gz; the combined
# log is $OUT/log.txt (the device tool brings back at most 8 files).
#   scripts/gpu-run.sh STAGE...              run the stages now, inside this call
#   scripts/gpu-run.sh --detach STAGE...     run them in a queue that outlives the call (while the machine is held)
#   scripts/gpu-run.sh --collect [SECONDS]   wait up to SECONDS for the queues, bring back queues.tar.gz
# Per engine, the runner does what engine scripts used to: `runner conformance`, `runner adapter ENGINE` (the
# engine's own loop against the runner, ±3%), `runner bench`/`runner suite`; scripts/gpu/ keeps only what the
# runner cannot (libtorch's export phases, lmrs on the host CPU, the telemetry checks).
#   smoke            GPU facts, bandwidth probe, conformance of every engine on cuda:0 bf16
#   bench            runner bench of CONFIG (configs/decode-tinyllama.yaml) on the SHAPE model (tinyllama-1.1b):
#                    ENGINE_LIST (ENGINE[:key=value…] entries, eager/compiled for pytorch's modes; empty: the
#                    config's engines), BENCH_FLAGS (e.g. --launches 3 --profile kernels); END_AT (epoch seconds) or
#                    STAGE_TIMEOUT stop it like Ctrl-C, keeping every finished launch
#   bench-tiny       bench, TinyLlama-1.1B, ENGINE_LIST defaulting to every engine in the bundle
#   bench-8b         bench, Llama-3-8B (configs/decode.yaml), the same default list
#   profile          bench with --profile kernels (CUPTI: kernels, copies, graph launches per token, profiled twins
#                    next to unprofiled): PROFILE_ENGINES (eager compiled), PROFILE_LAUNCHES (1), TinyLlama
#   verdicts         bench of configs/verdicts-tinyllama.yaml: the launch-level verdict on real launches (A/A:
#                    pytorch compiled under two labels must not differ; A/B: eager must), VERDICT_LAUNCHES (5)
#   suite            runner suite configs/suite-h200.yaml, resumed by each later call on a warm machine (SUITE_MODELS,
#                    SUITE_BUDGET 7m); $OUT/suite.tar.gz
#   adapter          `runner adapter` (the engine's own decode loop against runner launches, interleaved on the card, ±3%)
#                    of ADAPTER="ENGINE[:key=value]:SHAPE ..." (default candle:tinyllama-1.1b), ROUNDS (2), WARMUP (2), ITERS (5),
#                    ADAPTER_FLAGS (more flags, e.g. --native-spin; --device cpu --dtype f32 for a dry run)
#   native           adapter of NATIVE_ENGINES (candle burn mistralrs pytorch) × SHAPES (tinyllama-1.1b llama-3-8b)
#   libtorch         scripts/gpu/libtorch.sh $LIBTORCH_PHASES (default: conformance bench): the libtorch engine
#                    (AOTInductor, no Python) on cuda:0, then libtorch vs pytorch compiled/eager (its header: knobs)
#   telemetry        real-NVML tests and the sampler-cost check (scripts/gpu/telemetry.sh)
#   lmrs             scripts/gpu/lmrs.sh: the lmrs engine on the host's CPU (memory-bandwidth probe, f32/q8_0/q4_0,
#                    1 thread and all cores, next to reference and candle on the CPU), TinyLlama-1.1B
#   burn-tune        burn's autotune as its authors run it: a cold process per shape × level (tuning cost on
#                    record), then `runner adapter burn` on the warm cache; BURN_SHAPES, BURN_LEVELS (balanced),
#                    BURN_PARALLEL=1 (the cold processes side by side), ROUNDS, BURN_ATTENTION (padded),
#                    BURN_PROMPTS (128; "128 1" adds a process per shape × level whose 1-token prompt starts at the
#                    decode step's m=1 keys while the other tunes the prefill's: its new tokens keep the cache at 384),
#                    BURN_TIMEOUT (cold process), BURN_COLD_ONLY=1 (tune only).
#                    Tuned keys persist (also from a killed process) in $XDG_CACHE_HOME/cubecl, packed
#                    into $OUT/cubecl-cache.tar.xz; carried back as .gpu/cubecl-cache.tar.xz (or named by
#                    CUBECL_STORE=FILE) it pre-warms a fresh machine, so a pass longer than one call resumes
#                    where it stopped; the driver's JIT cache likewise (cuda-jit-cache.tar.xz, CUDA_JIT_STORE).
#                    cubecl's records (each key's start, time, candidates) are printed after the pass and by
#                    every --collect (RECORDS_TAIL lines per store).
# Findings of stages deleted since (gpus0: `--gpus 0` against the sequential path) live in results/*/README.md.
set -euo pipefail
: "${OUT:?}"
W=/tmp/cib
export BIN=$W/bin MODELS=$W/models
mkdir -p "$W" "$MODELS"
# Unpack each carried archive once per machine (a warm machine keeps /tmp/cib between
# calls, and a later call may carry other archives): bundle.tar.xz first, then the
# others override it (e.g. go.tar.xz). A marker per archive content says it is done.
for a in .gpu/bundle.tar.xz .gpu/*.tar.xz; do
  [[ -f $a ]] || continue
  mark=$W/unpacked-$(basename "$a")-$(cksum <"$a" | cut -d' ' -f1)
  [[ -f $mark ]] && continue
  first=$(tar -tJf "$a" | sed -n 1p) # archives hold bin/NAME, or bare NAME (extracted into bin/); sed reads it all: no SIGPIPE
  # X-noat.tar.xz (burn without autotune: the same binary names) goes to bin-noat/: BENCH_BIN=$W/bin-noat benches it.
  if [[ $a == *-noat.tar.xz ]]; then mkdir -p "$W/bin-noat" && tar -xJf "$a" -C "$W/bin-noat"
  elif [[ $first == bin/* ]]; then tar -xJf "$a" -C "$W"; else mkdir -p "$BIN" && tar -xJf "$a" -C "$BIN"; fi
  touch "$mark"
done
[[ -x $BIN/runner ]] || { echo "gpu-run: no runner in the carried .gpu/*.tar.xz" >&2; exit 1; }
# cubecl (burn) keeps autotune results and compiled kernels in the user cache dir:
# a known place, so burn-tune can report and pack it. A carried .gpu/cubecl-cache.tar.xz (or .gz)
# (from an earlier call's burn-tune) pre-warms it, before a --detach: the queue runs from a copy of scripts/ without .gpu/.
export XDG_CACHE_HOME=$W/xdg-cache
mkdir -p "$XDG_CACHE_HOME"
# The driver's JIT cache (PTX → SASS), where cubecl's PTX (and candle's) becomes machine code: kept beside cubecl's
# store so a resumed pass skips that step too (.gpu/cuda-jit-cache.tar.xz or CUDA_JIT_STORE=FILE pre-warm it).
export CUDA_CACHE_PATH=$XDG_CACHE_HOME/nv-compute-cache CUDA_CACHE_MAXSIZE=4294967296
for jit in ${CUDA_JIT_STORE:-} .gpu/cuda-jit-cache.tar.xz; do
  if [[ -f $jit && ! -d $CUDA_CACHE_PATH ]]; then tar -xaf "$jit" -C "$XDG_CACHE_HOME"; fi
done
# CUBECL_STORE=FILE names another (e.g. results/h200-2026-12-02-s6/cubecl-store.tar.xz, which travels with the tree).
for store in ${CUBECL_STORE:-} .gpu/cubecl-cache.tar.gz .gpu/cubecl-cache.tar.xz; do
  if [[ -f $store && ! -d $XDG_CACHE_HOME/cubecl ]]; then tar -xaf "$store" -C "$XDG_CACHE_HOME"; fi
done
records() { # what cubecl recorded in each store: per process, every key's start, wall time and candidates (the last
  # $1 lines of each store, default all)
  local db
  for db in "$XDG_CACHE_HOME"/cubecl/*.db; do
    [[ -f $db ]] || continue
    echo "--- cubecl records, $(basename "$db" .db) environment"
    python3 scripts/gpu/cubecl-store.py --records "$db" | cut -c1-200 | tail -n "${1:-+1}" || true
  done
}
# A queue of stages longer than one call (10 min): --detach STAGE... starts them in a new process
# session (it outlives the call while the machine is held) from a private copy of scripts/ and
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
  id=$(date -u +%H%M%S)
  mkdir -p "$Q/$id/tree"
  cp -r scripts configs "$Q/$id/tree/"
  (cd "$Q/$id/tree" && setsid nohup flock "$Q.lock" env OUT="$Q/$id" CIB_QUEUED=1 bash scripts/gpu-run.sh "$@" >"$Q/$id.nohup" 2>&1 </dev/null &)
  sleep 2
  echo "gpu-run: queue $id started detached: $* (log $Q/$id/log.txt; running queues: $(pgrep -fc 'CIB_QUEUED=1' || true))"
  exit 0
  ;;
--collect)
  wait_s=${2:-0} t0=$(date +%s)
  while (($(date +%s) - t0 < wait_s)) && ! flock -n "$Q.lock" true; do sleep 10; done
  flock -n "$Q.lock" true && echo "gpu-run: no queue running" || echo "gpu-run: a queue is still running"
  records "${RECORDS_TAIL:-20}" # a burn pass's progress key by key (its log shows no times)
  for d in "$Q"/*/; do
    [[ -d $d ]] || continue
    id=$(basename "$d")
    echo "=== queue $id: $(grep -c '^=== stage' "$d/log.txt" 2>/dev/null || echo 0) stages begun"
    tail -n "${TAIL:-25}" "$d/log.txt" 2>/dev/null | cut -c1-300 || true # a queue waiting for its turn has no log yet
  done
  # One archive of every queue's outputs (logs and stage archives): $OUT takes 8 files, 16 MiB each. The stores a
  # queue packed (pack_store: several MB each) come back beside it, the newest of each kind.
  for f in cubecl-cache.tar.xz cuda-jit-cache.tar.xz; do
    newest=$(ls -t "$Q"/*/"$f" 2>/dev/null | head -n1 || true)
    [[ -z $newest ]] || cp "$newest" "$OUT/$f"
  done
  tar -czf "$OUT/queues.tar.gz" -C "$Q" --exclude=tree --exclude='*-cache.tar.xz' --warning=no-file-changed . || true # logs still growing: exit 1
  ls -l "$OUT/queues.tar.gz" || true
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
exec > >(tee -a "$OUT/log.txt") 2>&1
# A warm machine may still run an engine that an earlier call's time limit cut off (the
# device tool ends the command, not always its children): it would share the GPU with
# everything measured here (and hold cubecl's store). Stop our own leftovers, by PID.
[[ ${CIB_QUEUED:-0} == 1 ]] || flock -n "$Q.lock" true || { echo "gpu-run: a detached queue is running: run --collect, or wait"; exit 3; }
for pid in $(pgrep -f "$BIN/(burn|candle|mistralrs|pytorch|reference|runner|llamacpp|libtorch|lmrs)" || true); do
  echo "gpu-run: stopping leftover $(ps -o pid=,etime=,args= -p "$pid" | cut -c1-160)"
  kill "$pid" 2>/dev/null || true
done
nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader | sed 's/^/gpu-run: compute process at start: /'
engines=()
for e in pytorch candle burn mistralrs llamacpp libtorch; do [[ -x $BIN/$e ]] && engines+=("$e"); done
synth() { [[ -f $MODELS/$1/config.json ]] || "$BIN/runner" models synth --shape "$1" --dtype bf16 --out "$MODELS/$1"; }
list() { # ENGINE_LIST (default: $1) as --engines wants it: the entries whose binary is in the bundle; eager/compiled are pytorch's modes
  local l=() e
  for e in ${ENGINE_LIST-$1}; do
    case $e in eager | compiled) e=pytorch:mode=$e ;; esac
    [[ -x ${BENCH_BIN:-$BIN}/${e%%:*} ]] && l+=("$e")
  done
  (IFS=,; echo "${l[*]}")
}
progress() { # live progress of a cold burn process for log.txt: tuned keys and a few token stamps (line-buffered: the
  # host's awk is mawk, which reads a pipe in blocks and printed nothing of a 16-minute pass on 2026-12-02)
  grep --line-buffered -E '^Fastest result|^burn-trace: token (0|1|127|255) ' | sed -u 's/^\(.\{200\}\).*/\1/'
}
pack_store() { # cubecl's store, for the next machine (.gpu/cubecl-cache.tar.xz): xz, as its compiled kernels make it
  # 200 MB unpacked (gzip 14.5 MB, xz 6.6 MB on 2026-12-02) and a file back from $OUT may hold 16 MiB
  XZ_OPT="-6 -T0" tar -cJf "$OUT/cubecl-cache.tar.xz" -C "$XDG_CACHE_HOME" cubecl 2>/dev/null && ls -l "$OUT/cubecl-cache.tar.xz"
  [[ ! -d $CUDA_CACHE_PATH ]] || { XZ_OPT="-6 -T0" tar -cJf "$OUT/cuda-jit-cache.tar.xz" -C "$XDG_CACHE_HOME" nv-compute-cache && ls -l "$OUT/cuda-jit-cache.tar.xz"; }
}
bench() { # runner bench of $CONFIG on $MODELS/$SHAPE, engines: list
  local shape=${SHAPE:-tinyllama-1.1b} engines
  synth "$shape"
  engines=$(list "${1:-}")
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
every="pytorch:mode=eager pytorch:mode=compiled candle burn mistralrs"

# DEADLINE=seconds from now: stages that would start in its last STAGE_MIN (60) seconds
# are skipped, so what finished comes back inside the device tool's limit.
end=$(($(date +%s) + ${DEADLINE:-100000}))
for stage in "$@"; do
  if (($(date +%s) + ${STAGE_MIN:-60} > end)); then echo "=== stage $stage skipped: deadline"; continue; fi
  S=$W/out/$stage
  mkdir -p "$S"
  echo "=== stage $stage ($(date -u +%H:%M:%S))"
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
  telemetry)
    synth tinyllama-1.1b
    OUT=$S TELEMETRY_BENCH=${TELEMETRY_BENCH:-0} scripts/gpu/telemetry.sh || echo "TELEMETRY FAILED"
    ;;
  native | adapter)
    # runner adapter: the engine's own decode loop (candle-bench, burn-bench, bench.py, mistralrs native) against
    # runner launches of the same weights and prompt, alternated on the card; a verdict line per metric (exit 4: outside ±3%).
    list=${ADAPTER:-candle:tinyllama-1.1b}
    [[ $stage == native ]] && list=$(for s in ${SHAPES-tinyllama-1.1b llama-3-8b}; do for e in ${NATIVE_ENGINES:-candle burn mistralrs pytorch}; do echo "$e:$s"; done; done)
    for x in $list; do
      e=${x%:*} s=${x##*:}
      [[ -x $BIN/${e%%:*} ]] || { echo "adapter: no ${e%%:*} in the bundle"; continue; }
      synth "$s"
      "$BIN/runner" adapter "$e" --model "$MODELS/$s" --bin-dir "$BIN" --rounds "${ROUNDS:-2}" --warmup "${WARMUP:-2}" \
        --iterations "${ITERS:-5}" --out "$S" ${ADAPTER_FLAGS:-} || echo "ADAPTER $x: exit $? (4: outside ±3%)"
    done
    ;;
  libtorch)
    OUT=$S scripts/gpu/libtorch.sh ${LIBTORCH_PHASES:-conformance bench} || echo "LIBTORCH FAILED"
    ;;
  burn-tune)
    "$BIN/burn" info
    attn=${BURN_ATTENTION:-padded} # padded: one decode shape per step, so decode adds no autotune keys (grouped adds ~9 per power of two of the KV length)
    # One cold process per shape × level (BURN_LEVELS, default balanced = cubecl's default, in its default store; any
    # other level in a store of its own, autotune-LEVEL, as the engine's autotune_level option does). BURN_PARALLEL=1
    # runs them side by side: each compiles in one host thread (2026-11-28: the tuning pass is single-threaded
    # NVRTC, GPU idle), and cubecl's store is one WAL database that processes share safely.
    pids=()
    for s in ${BURN_SHAPES:-tinyllama-1.1b llama-3-8b}; do
      synth "$s"
      for lv in ${BURN_LEVELS:-balanced}; do
      for pl in ${BURN_PROMPTS:-128}; do
        c=$S/cold-$s-$lv
        [[ $pl == 128 ]] || c=$c-p$pl
        mkdir -p "$c"
        lvenv=()
        [[ $lv == balanced ]] || lvenv=(CUBECL_AUTOTUNE_LEVEL="$lv" CUBECL_ENVIRONMENT="autotune-$lv")
        # A cold process: the warm-up iteration carries NVRTC compiles and the tuning pass. cubecl's compile and
        # autotune logs and the per-token trace go to stderr (unbuffered: a process the timeout kills still leaves
        # them), run from its own directory so the cubecl.toml there applies to it alone. [compilation] cache:
        # cubecl's store of compiled kernels (off by default), written kernel by kernel, so a process cut off inside
        # a key (2026-11-28: one key compiled 99 candidates in 535 s and was lost) leaves its compilations for the
        # next pass, which then benchmarks instead of compiling; tuned results are the same.
        printf '[compilation]\ncache = true\n[compilation.logger]\nlevel = "basic"\nstderr = true\n[autotune.logger]\nlevel = "minimal"\nstderr = true\n' >"$c/cubecl.toml"
        cold() {
          local t0
          t0=$(date +%s.%N)
          (cd "$c" && env "${lvenv[@]}" CIB_BURN_TRACE=1 timeout "${BURN_TIMEOUT:-600}" "$BIN/burn-bench" --model "$MODELS/$s" \
            --device cuda:0 --dtype bf16 --prompt-len "$pl" --new $((384 - pl)) --warmup 1 --iters 2 --seed 1 --case p128-n256 \
            --attention "$attn" >out.jsonl 2> >(tee stderr.txt | progress | sed -u "s/^/[$s $lv p$pl] /" >&2)) || echo "BURN COLD FAILED: $s $lv p$pl (exit $?; 124: BURN_TIMEOUT)"
          sleep 1 # let tee finish stderr.txt
          cat "$c/out.jsonl"
          echo "burn-tune $s $lv p$pl: cold process (load + 1 warm-up + 2 timed iterations) took $(python3 -c "import time; print(round(time.time() - $t0, 1))") s;" \
            "$(grep -c '^burn-trace: token ' "$c/stderr.txt") token lines, $(grep -ci 'compil' "$c/stderr.txt") compile-log lines, $(grep -c '^Fastest result' "$c/stderr.txt") autotune keys tuned"
          tail -n 3 "$c/stderr.txt"
        }
        if [[ ${BURN_PARALLEL:-0} == 1 ]]; then cold & pids+=($!); else cold; fi
      done
      done
    done
    ((${#pids[@]} == 0)) || wait "${pids[@]}"
    records
    echo "cubecl store: $(du -sh "$XDG_CACHE_HOME/cubecl" 2>/dev/null | cut -f1)"; ls -l "$XDG_CACHE_HOME/cubecl" 2>/dev/null || true
    pack_store
    # Warm store: every later process finds the tuned kernels (their first warm-up iteration shows it).
    if [[ ${BURN_COLD_ONLY:-0} != 1 ]]; then # tuning only: a cold pass may need more than one call (10 min)
      for s in ${BURN_SHAPES:-tinyllama-1.1b llama-3-8b}; do
        "$BIN/runner" adapter "burn:attention=$attn" --model "$MODELS/$s" --bin-dir "$BIN" --rounds "${ROUNDS:-2}" --out "$S" ||
          echo "ADAPTER burn $s: exit $? (4: outside ±3%)"
      done
    fi
    ;;
  bench) bench ;;
  bench-tiny) bench "$every" ;;
  bench-8b) SHAPE=llama-3-8b CONFIG=configs/decode.yaml bench "$every" ;;
  profile)
    "$BIN/runner" gpu probe || echo "PROBE FAILED"
    [[ -f $BIN/libcib_cupti.so ]] || echo "NO libcib_cupti.so in the bundle"
    ENGINE_LIST=${PROFILE_ENGINES:-eager compiled} BENCH_FLAGS="--profile kernels --launches ${PROFILE_LAUNCHES:-1} ${BENCH_FLAGS:-}" bench
    sed -n '/## Kernel profile/,/## Environment/p' "$S"/*/report.md || true
    ;;
  verdicts)
    "$BIN/runner" gpu probe || echo "PROBE FAILED"
    ENGINE_LIST= CONFIG=configs/verdicts-tinyllama.yaml BENCH_FLAGS="--launches ${VERDICT_LAUNCHES:-5} ${BENCH_FLAGS:-}" bench
    ;;
  suite)
    # configs/suite-h200.yaml (every engine × TinyLlama/8B × three workloads), resumable: the first call starts it,
    # later calls on the warm machine resume it; SUITE_MODELS (e.g. tinyllama-1.1b) limits a new suite, SUITE_BUDGET
    # (7m) stops it between launches so what finished comes back inside the call.
    d=$(ls -d "$W"/suite/*-suite-h200 2>/dev/null | tail -n1 || true)
    (
      cd "$W"
      if [[ -n $d ]]; then
        timeout -s INT --kill-after=30 540 "$BIN/runner" suite --resume "$d" --bin-dir "$BIN" --stop-after "${SUITE_BUDGET:-7m}"
      else
        timeout -s INT --kill-after=30 540 "$BIN/runner" suite "$OLDPWD/configs/suite-h200.yaml" --bin-dir "$BIN" --out "$W/suite" \
          ${SUITE_MODELS:+--models $SUITE_MODELS} --stop-after "${SUITE_BUDGET:-7m}"
      fi
    ) || echo "suite exit $?"
    tar -czf "$OUT/suite.tar.gz" -C "$W" suite
    ;;
  lmrs)
    synth tinyllama-1.1b
    OUT=$S scripts/gpu/lmrs.sh || echo "LMRS FAILED"
    ;;
  *) echo "unknown stage $stage" >&2 ;;
  esac
  tar -czf "$OUT/$stage.tar.gz" -C "$W/out" "$stage"
done
echo "=== done ($(date -u +%H:%M:%S))"
