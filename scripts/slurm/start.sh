#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for trying `--profile slurm` and for the
# test that runs the workflow through it (tests/test_slurm.py).
#
#   scripts/slurm/start.sh [STATE_DIR]        (default: /tmp/facecluster-slurm)
#   scripts/slurm/stop.sh [STATE_DIR]
#
# Installs Debian's slurm-wlm and munge unless already installed, writes slurm.conf and
# gres.conf for this host into /etc/slurm (SLURM's default place: the Snakemake plugin
# strips SLURM_CONF from a job's environment, so a private path would not reach srun
# inside jobs; files this script did not write are never replaced), and starts munged
# (unless one already answers), slurmctld and slurmd, with their spool, logs and pid
# files in STATE_DIR.  Run again, it reuses the daemons it started.  stop.sh ends
# exactly the daemons started here.
#
# The node has two partitions over the same CPUs, `cpu` (the default) and `gpu`, and a
# generic resource `gpu:1` whose device is /dev/null: SLURM schedules GPU requests for
# real, and the job finds no CUDA device and runs on its CPU fallback.
#
# Prints "started NAME PID" for each daemon it started.  Exit status: 0 running; 2 not
# root; 3 packages unavailable; 4 a daemon failed to start; 5 /etc/slurm holds another
# cluster's configuration; 6 SLURM daemons not started from STATE_DIR are running.
set -euo pipefail

STATE=$(realpath -m "${1:-${FC_SLURM_DIR:-/tmp/facecluster-slurm}}")
MARK="# Written by facecluster's scripts/slurm/start.sh"
say() { echo "slurm/start.sh: $*" >&2; }

alive() {  # alive NAME: STATE/NAME.pid names a running process called NAME
    local pidfile=$STATE/$1.pid
    [[ -s $pidfile ]] && [[ $(cat "/proc/$(cat "$pidfile")/comm" 2>/dev/null) == "$1" ]]
}

wait_for() {  # wait_for SECONDS COMMAND...: retry COMMAND until it succeeds
    local deadline=$((SECONDS + $1))
    shift
    until "$@" > /dev/null 2>&1; do
        (( SECONDS < deadline )) || return 1
        sleep 0.5
    done
}

if [[ $(id -u) -ne 0 ]]; then
    say "needs root (installs packages and runs the SLURM daemons)"
    exit 2
fi

# --- packages (skipped when present: a second start costs nothing) -------------------
need=()
for tool in slurmctld slurmd sbatch munged; do
    command -v "$tool" > /dev/null || need+=("$tool")
done
if (( ${#need[@]} )); then
    if ! command -v apt-get > /dev/null; then
        say "missing ${need[*]} and no apt-get to install slurm-wlm and munge"
        exit 3
    fi
    say "installing slurm-wlm and munge (missing: ${need[*]})"
    export DEBIAN_FRONTEND=noninteractive
    log=${TMPDIR:-/tmp}/facecluster-slurm-apt.log
    if ! { apt-get update -q && apt-get install -y -q --no-install-recommends slurm-wlm munge; } \
            > "$log" 2>&1; then
        say "apt-get could not install slurm-wlm and munge: $(tail -3 "$log" | tr '\n' ' ')(full log: $log)"
        exit 3
    fi
fi

# --- nothing of another cluster is touched ---------------------------------------------
for f in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
    if [[ -e $f ]] && ! grep -qF "$MARK" "$f"; then
        say "$f exists and was not written by this script: not replacing another cluster's configuration"
        exit 5
    fi
done
for daemon in slurmctld slurmd; do
    if ! alive $daemon && pgrep -x $daemon > /dev/null; then
        say "a $daemon not started from $STATE is running (pid $(pgrep -x $daemon | tr '\n' ' '))"
        exit 6
    fi
done

# --- the node: SLURM requires NodeName = `hostname -s`, resolvable --------------------
NODE=$(hostname -s)
if ! getent hosts "$NODE" > /dev/null; then
    say "adding $NODE to /etc/hosts (SLURM needs the node name to resolve)"
    echo "127.0.1.1 $NODE" >> /etc/hosts
fi
# CPU topology as slurmd sees it; memory a little under the total so slurmd accepts it.
TOPOLOGY=$(slurmd -C | head -1 | grep -o 'CPUs=.*ThreadsPerCore=[0-9]*')
MEM_MB=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)

mkdir -p /etc/slurm "$STATE"/spool/ctld "$STATE"/spool/d "$STATE"/log
cat > /etc/slurm/slurm.conf <<EOF
$MARK: a single-node test cluster.
ClusterName=facecluster
SlurmctldHost=$NODE
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# No cgroups and no accounting database: the simplest plugins that run without systemd.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
# Finished jobs stay visible to squeue for 10 minutes: Snakemake's squeue status checks
# (which need MinJobAge ≥ 3 × its first status wait) and the test read them there.
MinJobAge=600
GresTypes=gpu
NodeName=$NODE $TOPOLOGY RealMemory=$MEM_MB Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE MaxTime=INFINITE State=UP
EOF
# The GPU is /dev/null: SLURM schedules it and the job finds no CUDA device.
printf '%s\nNodeName=%s Name=gpu File=/dev/null\n' "$MARK" "$NODE" > /etc/slurm/gres.conf

# --- munge: reuse one that answers (stopped only if started here), else start it ------
if munge -n 2>/dev/null | unmunge > /dev/null 2>&1; then
    say "munged already running; using it"
    # Ours only if it is the one this directory recorded; otherwise stop.sh leaves it alone.
    if [[ -s $STATE/munged.pid && $(cat "$STATE/munged.pid") != $(cat /run/munge/munged.pid 2>/dev/null) ]]; then
        rm -f "$STATE/munged.pid"
    fi
else
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 0755 /run/munge
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid
    if ! wait_for 10 bash -c 'munge -n | unmunge'; then
        say "munged did not start (see /var/log/munge/munged.log)"
        exit 4
    fi
    cp /run/munge/munged.pid "$STATE/munged.pid"
    echo "started munged $(cat "$STATE/munged.pid")"
fi

# --- slurmctld, then slurmd (both daemonise and write their pid files) ----------------
start() {  # start NAME CHECK...: start daemon NAME unless ours runs, then wait for CHECK
    local name=$1
    shift
    if alive "$name"; then
        say "$name already running (pid $(cat "$STATE/$name.pid"))"
    else
        rm -f "$STATE/$name.pid"
        if [[ $name == slurmctld ]]; then slurmctld -c; else slurmd; fi  # -c: no saved state
        if ! wait_for 20 alive "$name"; then
            say "$name did not start; see $STATE/log/$name.log"
            exit 4
        fi
        echo "started $name $(cat "$STATE/$name.pid")"
    fi
    if ! wait_for 30 "$@"; then
        say "$name started but the cluster is not ready: $(sinfo -h -o '%P %t %E' 2>&1 | tr '\n' ' ')(see $STATE/log/$name.log)"
        exit 4
    fi
}
node_up() { sinfo -h -n "$NODE" -o %t | grep -Eq '^(idle|mix|alloc)'; }
start slurmctld scontrol ping
start slurmd node_up
say "running: $(sinfo -h -o '%P %D %t' | tr '\n' ' ')(state in $STATE)"
