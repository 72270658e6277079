#!/usr/bin/env bash
# A real one-node Slurm on localhost for tests and for trying `spio` on a cluster without one:
# installs Debian's munge, slurmctld, slurmd and slurm-client if missing, writes a minimal
# slurm.conf for this machine, starts the daemons and waits until the node takes jobs.
# Usage: scripts/slurm-local.sh [start|stop|status]. Needs root (CI runs as root).
set -euo pipefail
action="${1:-start}"
conf=/etc/slurm/slurm.conf
node="$(hostname -s)"

stop() {
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  pkill -x munged 2>/dev/null || true
  # The daemons save their state before they exit; a start right after must not find them.
  for _ in $(seq 1 40); do
    pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || pgrep -x munged >/dev/null || return 0
    sleep 0.25
  done
}

case "$action" in
  stop) stop; exit 0 ;;
  status) sinfo -h -o "%P %a %D %t" && exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || { echo "$0: needs root (it writes /etc/slurm and starts daemons)" >&2; exit 1; }
missing=""
for p in munge slurmctld slurmd slurm-client; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi

# munge: a key, and the daemon (as root inside containers without systemd).
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown munge:munge /etc/munge/munge.key 2>/dev/null || true
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown -R munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged

cpus="$(nproc)"
memory_mb="$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))"
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > "$conf" <<CONF
# Written by scripts/slurm-local.sh: one node, this machine.
ClusterName=spio-local
SlurmctldHost=$node(127.0.0.1)
AuthType=auth/munge
SlurmUser=root
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MaxArraySize=1001
DefMemPerCPU=$(( memory_mb / cpus ))
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF

pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 30); do
  if sinfo -h -o "%t" 2>/dev/null | grep -Eq "^(idle|mix|alloc)"; then
    echo "slurm-local: node $node up ($cpus CPUs, $memory_mb MB), partition local"
    exit 0
  fi
  scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true
  sleep 1
done
echo "slurm-local: the node did not come up; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
sinfo >&2 || true
exit 1
