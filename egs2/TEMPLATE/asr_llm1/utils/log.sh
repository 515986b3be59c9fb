#!/usr/bin/env bash
# Sourced by the data-dir utils and stage scripts: log MESSAGE prints "time (script:line) MESSAGE" to stderr;
# die MESSAGE prints the same with ERROR: and exits 1.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then  # run, not sourced: show the help above
    sed -n '2,3p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
log() { printf '%s (%s:%s) %s\n' "$(date '+%Y-%m-%dT%H:%M:%S')" "${BASH_SOURCE[1]##*/}" "${BASH_LINENO[0]}" "$*" >&2; }
die() { printf '%s (%s:%s) ERROR: %s\n' "$(date '+%Y-%m-%dT%H:%M:%S')" "${BASH_SOURCE[1]##*/}" "${BASH_LINENO[0]}" "$*" >&2; exit 1; }
