#!/usr/bin/env bash
# Converts utt2spk ("utt spk" lines) to spk2utt ("spk utt1 utt2 ..." lines), speakers in the order
# of their first appearance (sorted when utt2spk is sorted and speaker ids prefix utterance ids).
#   utt2spk_to_spk2utt.sh [utt2spk] > spk2utt      (reads stdin without an argument)
set -euo pipefail
if [ $# -gt 1 ] || [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then
    sed -n '2,3s/^# //p' "$0"
    [ $# -gt 1 ] && exit 1
    exit 0
fi
awk 'NF == 0 { next }
     NF != 2 { printf("utt2spk_to_spk2utt.sh: line %d: expected \"utt spk\", got: %s\n", NR, $0) > "/dev/stderr"; bad = 1; exit 1 }
     { if (!($2 in utts)) { order[n++] = $2; utts[$2] = $1 } else { utts[$2] = utts[$2] " " $1 } }
     END { if (bad) exit 1; for (i = 0; i < n; i++) print order[i], utts[order[i]] }' "${1:--}"
