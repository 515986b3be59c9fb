#!/usr/bin/env bash
# Splits a Kaldi-style file (e.g. wav.scp used as a key file) into N contiguous, nearly equal parts,
# one per output file, keeping the order (Kaldi split_scp.pl). Fails if there are fewer lines
# than outputs, since every part must be non-empty.
#   split_scp.sh <in> <out1> <out2> ... <outN>
set -euo pipefail
if [ $# -lt 2 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
    sed -n '2,5s/^# //p' "$0"
    [ $# -lt 2 ] && [ "${1:-}" != --help ] && [ "${1:-}" != -h ] && exit 1
    exit 0
fi
in=$1
shift
if [ ! -e "${in}" ]; then
    echo "split_scp.sh: no such file: ${in}" >&2
    exit 1
fi
for out in "$@"; do
    mkdir -p "$(dirname "${out}")"
done
awk -v outs="$(printf "%s\n" "$@")" -v src="${in}" '
    NF > 0 { line[n++] = $0 }
    END {
        k = split(outs, out, "\n"); if (out[k] == "") k--
        if (n < k) {
            printf("split_scp.sh: %s has %d lines, cannot split it into %d non-empty parts\n", src, n, k) > "/dev/stderr"
            exit 1
        }
        for (i = 0; i < k; i++) {
            b = int(i * n / k); e = int((i + 1) * n / k)
            printf("") > out[i + 1]
            for (j = b; j < e; j++) print line[j] > out[i + 1]
            close(out[i + 1])
        }
    }' "${in}"
