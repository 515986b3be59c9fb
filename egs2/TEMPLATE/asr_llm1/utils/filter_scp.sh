#!/usr/bin/env bash
# Keeps the lines of a Kaldi-style file whose first field is listed (first field) in <id_list>,
# in the order of <in>. With --exclude true, keeps the lines whose key is NOT listed.
#   filter_scp.sh [--exclude true] <id_list> <in> > out
set -euo pipefail

help_usage="Usage: filter_scp.sh [--exclude true] <id_list> <in> > out"
exclude=false  # Keep the lines whose key is NOT in <id_list>.
. "$(dirname "$0")/parse_options.sh"

if [ $# -ne 2 ]; then
    echo "${help_usage}" >&2
    exit 1
fi
awk -v exclude="${exclude}" 'NR == FNR { keep[$1] = 1; next }
    { hit = ($1 in keep); if ((exclude == "true") != hit) print }' "$1" "$2"
