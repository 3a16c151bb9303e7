#!/usr/bin/env bash
# Where does a cold burn process stall? Runs burn-bench once per variant with cubecl's
# compile and autotune logs on stderr, every stderr line stamped with the seconds since
# start, and a watchdog that every INTERVAL seconds prints the GPU's utilization, memory,
# SM clock and power, the process's CPU use (cores) and its threads' states; after
# QUIET seconds without a new stderr line it also prints each thread's name, state and
# kernel wait channel (a GPU kernel that never ends looks different from a host-side
# deadlock or from a slow NVRTC compile).
#
#   BIN=dir MODELS=dir OUT=dir scripts/gpu/burn-watch.sh SHAPE VARIANT:SECONDS...
#
# VARIANT is an attention mode of the bridge (grouped|padded|fused). Writes
# $OUT/watch-VARIANT/{stderr.txt,watch.txt,out.jsonl} and echoes the watch lines.
set -uo pipefail
: "${BIN:?}" "${MODELS:?}" "${OUT:?}"
shape=${1:?shape}
shift
iv=${INTERVAL:-10} quiet=${QUIET:-30}

watch() { # PID DIR: samples until the process ends
  local pid=$1 dir=$2 t0 last=0 lines still=0 prev=0 now ticks cores
  t0=$(date +%s)
  prev=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
  while kill -0 "$pid" 2>/dev/null; do
    sleep "$iv"
    kill -0 "$pid" 2>/dev/null || break
    lines=$(wc -l <"$dir/stderr.txt")
    ((lines == last)) && still=$((still + iv)) || still=0
    last=$lines
    ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
    cores=$(awk -v a="$ticks" -v b="$prev" -v s="$iv" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (a - b) / hz / s}')
    prev=$ticks
    now=$(($(date +%s) - t0))
    echo "watch +${now}s stderr_lines=$lines quiet=${still}s cpu_cores=$cores" \
      "gpu=[$(nvidia-smi --query-gpu=utilization.gpu,memory.used,clocks.sm,power.draw --format=csv,noheader)]" \
      "threads=[$(cat /proc/"$pid"/task/*/stat 2>/dev/null | awk '{print $3}' | sort | uniq -c | tr -s ' \n' ' ')]"
    if ((still >= quiet)); then
      for t in /proc/"$pid"/task/*; do
        echo "  $(cat "$t/comm" 2>/dev/null) $(awk '{print $3}' "$t/stat" 2>/dev/null) $(cat "$t/wchan" 2>/dev/null) syscall=$(cut -d' ' -f1 "$t/syscall" 2>/dev/null)"
      done | sort | uniq -c | sed 's/^/  threads:/'
      still=0
    fi
  done
}

for vs in "$@"; do
  v=${vs%%:*} secs=${vs#*:}
  dir=$OUT/watch-$v
  mkdir -p "$dir"
  printf '[compilation.logger]\nlevel = "basic"\nstderr = true\n[autotune.logger]\nlevel = "minimal"\nstderr = true\n' >"$dir/cubecl.toml"
  : >"$dir/stderr.txt"
  echo "=== burn-watch $shape $v (${secs}s, $(date -u +%H:%M:%S)); cubecl store $(du -sh "${XDG_CACHE_HOME:-$HOME/.cache}/cubecl" 2>/dev/null | cut -f1)"
  start=$(date +%s.%N)
  (cd "$dir" && exec env CIB_BURN_TRACE=1 "$BIN/burn-bench" --model "$MODELS/$shape" --device cuda:0 --dtype bf16 \
    --prompt-len 128 --new "${NEW:-256}" --warmup 1 --iters 1 --seed 1 --case p128-n256 --attention "$v" \
    >"$dir/out.jsonl" 2> >(python3 -u -c '
import sys, time
t0 = float(sys.argv[1])
for line in sys.stdin:
    sys.stdout.write("%7.1f %s" % (time.time() - t0, line))
' "$start" >"$dir/stderr.txt")) &
  pid=$! # the subshell execs env, which execs burn-bench: the same PID
  watch "$pid" "$dir" | tee "$dir/watch.txt" &
  wpid=$!
  # The time limit: SIGTERM, then SIGKILL.
  (sleep "$secs"; kill "$pid" 2>/dev/null; sleep 5; kill -9 "$pid" 2>/dev/null) &
  kpid=$!
  wait "$pid"
  rc=$?
  kill "$kpid" 2>/dev/null
  wait "$wpid" 2>/dev/null
  sleep 1
  echo "burn-watch $v: exit $rc; $(grep -c 'burn-trace: token ' "$dir/stderr.txt") token lines," \
    "$(grep -c '^ *[0-9.]* Fastest result' "$dir/stderr.txt") autotune keys; last stderr lines:"
  grep -E 'Fastest result|burn-trace: token (0|1|2|127|255) ' "$dir/stderr.txt" | cut -c1-170
  tail -n 4 "$dir/stderr.txt" | cut -c1-170
  cut -c1-400 "$dir/out.jsonl"
done
