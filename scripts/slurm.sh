#!/usr/bin/env bash
# A one-node Slurm cluster for the Slurm executor's tests and bench (CI runs it; needs root or
# passwordless sudo the first time, for Debian's slurmctld, slurmd and munge). Idempotent: a
# cluster this script started and that still answers is reused. Prints what to export:
#   eval "$(bash scripts/slurm.sh)"
# Config, state and logs live under HEPX_SLURM_DIR (default /tmp/hepx-slurm); `bash
# scripts/slurm.sh stop` stops the daemons.
set -euo pipefail
DIR="${HEPX_SLURM_DIR:-/tmp/hepx-slurm}"
CONF="$DIR/slurm.conf"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo -n"
fi

if [ "${1:-}" = "stop" ]; then
    for pidfile in "$DIR"/slurmd.pid "$DIR"/slurmctld.pid; do
        [ -f "$pidfile" ] && $SUDO kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    exit 0
fi

if [ -f "$CONF" ] && SLURM_CONF="$CONF" timeout 5 scontrol ping 2>/dev/null | grep -q UP; then
    echo "export SLURM_CONF=$CONF"
    exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    echo "slurm.sh: installing slurmctld slurmd slurm-client munge ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

$SUDO mkdir -p "$DIR/spool/ctld" "$DIR/spool/d"
if [ ! -f /etc/munge/munge.key ]; then
    $SUDO mkdir -p /etc/munge
    $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
$SUDO chown munge:munge /etc/munge/munge.key
$SUDO chmod 0400 /etc/munge/munge.key
$SUDO mkdir -p /run/munge /var/log/munge /var/lib/munge
$SUDO chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! pgrep -x munged >/dev/null; then
    $SUDO runuser -u munge -- munged
fi

HOST="$(hostname -s)"
CPUS="$(nproc)"
MEMORY_MB="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
$SUDO tee "$CONF" >/dev/null <<CONFIG
ClusterName=hepx
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=3600
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
SchedulerType=sched/backfill
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEMORY_MB State=UNKNOWN
PartitionName=hepx Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONFIG

export SLURM_CONF="$CONF"
$SUDO env SLURM_CONF="$CONF" slurmctld
$SUDO env SLURM_CONF="$CONF" slurmd
for _ in $(seq 1 60); do
    if sinfo -h -o '%t' 2>/dev/null | grep -Eq '^(idle|mix|alloc)'; then
        echo "export SLURM_CONF=$CONF"
        exit 0
    fi
    sleep 0.5
done
echo "slurm.sh: the cluster did not come up; see $DIR/slurmctld.log and $DIR/slurmd.log" >&2
exit 1
