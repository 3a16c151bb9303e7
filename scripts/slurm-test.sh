#!/usr/bin/env bash
# A one-node Slurm on localhost for the runner's Slurm test (runner/internal/cli TestSlurmArray):
#   scripts/slurm-test.sh up     installs slurm-wlm and munge (apt, Debian), starts munged, slurmctld and
#                                slurmd with a private config, waits for the node, prints the config's path
#                                (use it as SLURM_CONF); idempotent: a running one is reused.
#   scripts/slurm-test.sh down   stops what up started.
# Needs root (the daemons run as root here); exits 77 when it cannot run (not root, no apt-get), so the
# test can skip. The config lives in $CIB_SLURM_DIR (default /tmp/cib-slurm) and uses ports 16817-16818:
# a real Slurm configuration of this machine, if any, is left alone.
set -euo pipefail
dir=${CIB_SLURM_DIR:-/tmp/cib-slurm}
conf=$dir/slurm.conf
export SLURM_CONF=$conf

cannot() { echo "slurm-test: $*" >&2; exit 77; }

up() {
  [[ $(id -u) == 0 ]] || cannot "needs root to install and run slurmctld/slurmd"
  if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || cannot "slurm-wlm and munge are not installed and there is no apt-get"
    echo "slurm-test: installing slurm-wlm and munge ($(date -u +%T))" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge) >"$dir.install.log" 2>&1 ||
      { tail -n 20 "$dir.install.log" >&2; echo "slurm-test: apt-get install slurm-wlm munge failed" >&2; exit 1; }
  fi
  mkdir -p "$dir/state" "$dir/spool"
  [[ -s /etc/munge/munge.key ]] || { mungekey --create --keyfile=/etc/munge/munge.key && chown munge: /etc/munge/munge.key; }
  if ! munge -n >/dev/null 2>&1; then
    mkdir -p /run/munge "$dir/munge" && chown munge: /run/munge "$dir/munge"
    runuser -u munge -- /usr/sbin/munged --pid-file="$dir/munge/munged.pid" # forks; the pid file says it was ours
  fi
  local node host
  node=$(slurmd -C | head -n1) # NodeName=... CPUs=... as slurmd will see them
  host=$(hostname -s)
  cat >"$conf.new" <<EOF
ClusterName=cibtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
MinJobAge=3600
KillWait=5
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=cib Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$conf.new" "$conf"
  running slurmctld || slurmctld
  running slurmd || slurmd
  local i
  for ((i = 0; i < 60; i++)); do
    if [[ $(sinfo -h -N -o %T 2>/dev/null) == idle* ]]; then
      echo "$conf"
      return
    fi
    sleep 0.5
  done
  echo "slurm-test: the node did not come up idle; sinfo: $(sinfo -N 2>&1)" >&2
  tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
  exit 1
}

# running NAME: the daemon of our pid file ($dir/NAME.pid, munged's in $dir/munge/) is alive.
running() { [[ -s $(pidfile "$1") ]] && kill -0 "$(cat "$(pidfile "$1")" 2>/dev/null)" 2>/dev/null; }
pidfile() { if [[ $1 == munged ]]; then echo "$dir/munge/munged.pid"; else echo "$dir/$1.pid"; fi; }

down() {
  local d i
  for d in slurmd slurmctld munged; do
    if running "$d"; then
      kill "$(cat "$(pidfile "$d")")" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do running "$d" || break; sleep 0.2; done
    fi
    rm -f "$(pidfile "$d")"
  done
}

case ${1:-} in
up) up ;;
down) down ;;
*) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
