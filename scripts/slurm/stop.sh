#!/usr/bin/env bash
# Stop the daemons scripts/slurm/start.sh started, by the PIDs it recorded in STATE_DIR.
#
#   scripts/slurm/stop.sh [STATE_DIR]        (default: /tmp/facecluster-slurm)
#
# A pid file whose process is gone, or is now some other program, is removed and nothing
# is signalled.  A munged that start.sh found already running has no pid file here and is
# left alone.  The /etc/slurm files start.sh wrote are removed once the daemons are gone:
# left behind, every later `snakemake` on the machine waits about 9 s at start-up (the
# SLURM plugin asks `scontrol show config`, which retries a controller that is not there).
set -uo pipefail

STATE=${1:-${FC_SLURM_DIR:-/tmp/facecluster-slurm}}
say() { echo "slurm/stop.sh: $*" >&2; }

stop() {  # stop NAME: end the process in STATE/NAME.pid if it is still NAME
    local pidfile=$STATE/$1.pid pid
    [[ -s $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) != "$1" ]]; then
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$1 ($pid) ignored SIGTERM for 10 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
    say "stopped $1 ($pid)"
}

# slurmd first: it reports to slurmctld while it shuts down; munge last, both need it.
stop slurmd
stop slurmctld
stop munged

MARK="# Written by facecluster's scripts/slurm/start.sh"
if ! pgrep -x slurmctld > /dev/null && ! pgrep -x slurmd > /dev/null; then
    for f in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
        if [[ -e $f ]] && grep -qF "$MARK" "$f"; then
            rm -f "$f" && say "removed $f"
        fi
    done
fi
