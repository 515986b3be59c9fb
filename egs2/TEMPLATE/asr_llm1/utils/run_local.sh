#!/usr/bin/env bash
# Runs a command as N parallel jobs on this machine (the local backend of cmd.sh; Kaldi run.pl style).
#
#   run_local.sh [options] JOB=1:N <log> <command> [args...]
#   run_local.sh [options] <log> <command> [args...]
#
# Every "JOB" in <log> and in the command is replaced by the job number. The command's arguments are
# passed on unchanged, as an argument vector: no shell reads them, so ";", "|", ">", "$(...)" or
# backquotes in an argument are literal text (write a script to run a pipeline). Each job's stdout and
# stderr go to its log, which gets the command (shell-quoted) as a header and "# Ended (code C) ..." as
# its last line.
# Waits for all jobs; fails if any failed, naming its log and showing the end of it.
# Options of cluster backends (--gpu, --mem, --num_threads, --time, --num_nodes, --name, --config)
# are accepted and ignored, so cmd.sh can switch backends without changing the stage scripts.
set -euo pipefail

help_usage="Usage: run_local.sh [options] JOB=1:N <log> <command> [args...]
       run_local.sh [options] <log> <command> [args...]
Runs the command as N parallel local jobs; every JOB in <log> and the command becomes the job number."

max_jobs_run=0  # Run at most this many jobs at once (0: all at once).
## Options of cluster backends, accepted and ignored here
gpu=0          # Number of GPUs per job.
mem=""         # Memory per job.
num_threads=1  # CPU threads per job.
time=""        # Time limit per job.
num_nodes=1    # Number of nodes.
name=""        # Job name.
config=""      # Backend configuration file.

. "$(dirname "$0")/parse_options.sh"

. "$(dirname "$0")/job_range.sh"
if parse_job_range "${1:-}"; then shift; fi
: "${gpu}" "${mem}" "${num_threads}" "${time}" "${num_nodes}" "${name}" "${config}"  # accepted and ignored
if [ $# -lt 2 ]; then
    echo "${help_usage}" >&2
    exit 1
fi
logspec=$1
shift

rcdir=$(mktemp -d)
pids=()
# shellcheck disable=SC2317  # run by the trap below
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "${p}" 2>/dev/null || true; done
}
trap 'cleanup; rm -rf "${rcdir}"; exit 130' INT TERM
trap 'rm -rf "${rcdir}"' EXIT

for ((j = first; j <= last; j++)); do
    if [ -n "${jobvar}" ]; then
        log=${logspec//${jobvar}/${j}}
        jargs=("${@//${jobvar}/${j}}")
    else
        log=${logspec}
        jargs=("$@")
    fi
    mkdir -p "$(dirname "${log}")"
    {
        printf '#'
        printf ' %q' "${jargs[@]}"
        printf '\n'
        echo "# Started at $(date '+%Y-%m-%d %H:%M:%S') on $(hostname)"
    } >>"${log}"
    (
        start=${SECONDS}
        set +e
        "${jargs[@]}" >>"${log}" 2>&1 </dev/null
        rc=$?
        echo "# Ended (code ${rc}) at $(date), elapsed time $((SECONDS - start)) seconds" >>"${log}"
        echo "${rc}" >"${rcdir}/${j}"
    ) &
    pids+=($!)
    if [ "${max_jobs_run}" -gt 0 ]; then
        while [ "$(jobs -rp | wc -l)" -ge "${max_jobs_run}" ]; do
            wait -n || true
        done
    fi
done
wait || true

failed=()
for ((j = first; j <= last; j++)); do
    rc=$(cat "${rcdir}/${j}" 2>/dev/null || echo missing)
    if [ "${rc}" != 0 ]; then
        failed+=("${j}")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    njobs=$((last - first + 1))
    for j in "${failed[@]}"; do
        log=${logspec}
        [ -n "${jobvar}" ] && log=${logspec//${jobvar}/${j}}
        echo "run_local.sh: job ${j} of ${njobs} failed; log: ${log}" >&2
    done
    j=${failed[0]}
    log=${logspec}
    [ -n "${jobvar}" ] && log=${logspec//${jobvar}/${j}}
    echo "run_local.sh: last lines of ${log}:" >&2
    tail -n 15 "${log}" | sed 's/^/    /' >&2
    exit 1
fi
exit 0
