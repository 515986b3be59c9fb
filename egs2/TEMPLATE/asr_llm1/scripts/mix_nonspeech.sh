#!/usr/bin/env bash
# Stage 5: adds non-speech utterances (empty transcripts) to a speech data dir. The number added is
# round(ratio * speech utterances), drawn at random (--seed) from the non-speech dir; when it has fewer,
# all are used and a warning says so.
set -euo pipefail
export LC_ALL=C

help_usage="Usage: scripts/mix_nonspeech.sh [options] <speech-dir> <nonspeech-dir> <out-dir>"
ratio=0.05  # Non-speech utterances to add, as a fraction of the speech utterances.
seed=0      # Random seed of the selection.
. utils/parse_options.sh

. "$(dirname "$0")/../utils/log.sh"

if [ $# -ne 3 ]; then
    echo "${help_usage}" >&2
    exit 1
fi
speech=${1%/}
nonspeech=${2%/}
out=${3%/}
n_speech=$(wc -l <"${speech}/utt2spk")
n_avail=$(wc -l <"${nonspeech}/utt2spk")
n_add=$(awk -v r="${ratio}" -v n="${n_speech}" 'BEGIN { if (r < 0) exit 1; printf("%d", r * n + 0.5) }') || {
    log "ERROR: --ratio must be >= 0, got ${ratio}"
    exit 1
}
if [ "${n_add}" -gt "${n_avail}" ]; then
    log "WARNING: ratio ${ratio} asks for ${n_add} non-speech utterances but ${nonspeech} has ${n_avail}; using all of them"
    n_add=${n_avail}
fi
if [ "${n_add}" -eq 0 ]; then
    utils/copy_data_dir.sh "${speech}" "${out}"
    log "${out}: ${n_speech} speech utterances, no non-speech (ratio ${ratio})"
    exit 0
fi
sub=${out}.nonspeech_subset
trap 'rm -rf "${sub}"' EXIT
utils/subset_data_dir.sh --random "${n_add}" --seed "${seed}" "${nonspeech}" "${sub}"
utils/combine_data.sh "${out}" "${speech}" "${sub}"
log "${out}: ${n_speech} speech + ${n_add} non-speech utterances ($(awk -v a="${n_add}" -v n="${n_speech}" 'BEGIN { printf("%.1f", 100 * a / (a + n)) }')% non-speech)"
