#!/usr/bin/env bash
# Converts spk2utt ("spk utt1 utt2 ..." lines) to utt2spk ("utt spk" lines).
#   spk2utt_to_utt2spk.sh [spk2utt] > utt2spk      (reads stdin without an argument)
set -euo pipefail
if [ $# -gt 1 ] || [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
    sed -n '2,3s/^# //p' "$0"
    [ $# -gt 1 ] && exit 1
    exit 0
fi
awk '{ for (i = 2; i <= NF; i++) print $i, $1 }' "${1:--}"
