#!/usr/bin/env bash
# Stage 12: prints the scoring summary of each decoded set: the sclite "Sum/Avg" line of
# <decode-dir>/<set>/score_wer/result.txt (or the whole file when it has none) and the insertion /
# hallucination metrics of hallucination.json when present.
set -euo pipefail

help_usage="Usage: scripts/show_results.sh <decode-dir> <set1> [<set2> ...]"
. utils/parse_options.sh

if [ $# -lt 2 ]; then
    echo "${help_usage}" >&2
    exit 1
fi
dir=${1%/}
shift
echo "# ${dir}"
for dset in "$@"; do
    res=${dir}/${dset}/score_wer/result.txt
    echo "## ${dset}"
    if [ ! -f "${res}" ]; then
        echo "   (no ${res})"
        continue
    fi
    if grep -q 'Sum/Avg' "${res}"; then
        grep -m1 -E 'SPKR' "${res}" | sed 's/^/   /' || true
        grep -m1 'Sum/Avg' "${res}" | sed 's/^/   /'
    else
        sed 's/^/   /' "${res}"
    fi
    hal=${dir}/${dset}/score_wer/hallucination.json
    if [ -f "${hal}" ]; then
        tr -d '\n' <"${hal}" | tr -s ' ' | sed 's/^/   /'
        echo
    fi
done
