#!/usr/bin/env bash
# Sourced by the job backends (run_local.sh, slurm.sh): parse_job_range ARG reads an optional leading
# JOB=first:last argument into jobvar, first and last (1:1 and no variable otherwise); it returns 0 when ARG
# was a range, so the caller shifts it off, and exits with a message on an empty range.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then  # run, not sourced: show the help above
    sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
parse_job_range() {
    jobvar=""
    first=1
    last=1
    [[ ${1:-} =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+):([0-9]+)$ ]] || return 1
    jobvar=${BASH_REMATCH[1]}
    first=${BASH_REMATCH[2]}
    last=${BASH_REMATCH[3]}
    if [ "${first}" -gt "${last}" ]; then
        echo "$(basename "$0"): empty job range ${jobvar}=${first}:${last}" >&2
        exit 1
    fi
}
