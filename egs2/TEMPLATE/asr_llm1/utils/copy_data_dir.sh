#!/usr/bin/env bash
# Copies a Kaldi data dir (wav.scp, utt2spk, text, utt2* and spk2* files), optionally adding a prefix
# to the utterance and/or speaker ids (e.g. "noisy-"). The prefixed ids stay sorted consistently.
set -euo pipefail
export LC_ALL=C

help_usage="Usage: copy_data_dir.sh [options] <src-dir> <dest-dir>"
utt_prefix=""  # Prefix added to every utterance id.
spk_prefix=""  # Prefix added to every speaker id.
. "$(dirname "$0")/parse_options.sh"

. "$(dirname "$0")/log.sh"

if [ $# -ne 2 ]; then
    echo "${help_usage}" >&2
    exit 1
fi
src=${1%/}
dest=${2%/}
utils=$(dirname "$0")
for f in wav.scp utt2spk; do
    if [ ! -f "${src}/${f}" ]; then
        log "ERROR: ${src}/${f} does not exist"
        exit 1
    fi
done
if [ "$(realpath -m "${src}")" = "$(realpath -m "${dest}")" ]; then
    log "ERROR: source and destination are the same: ${src}"
    exit 1
fi
mkdir -p "${dest}"
for f in "${dest}"/utt2* "${dest}"/spk2* "${dest}/text" "${dest}/wav.scp"; do
    [ -f "${f}" ] && rm "${f}"
done
for f in "${src}"/wav.scp "${src}"/text "${src}"/utt2*; do
    [ -f "${f}" ] || continue
    name=$(basename "${f}")
    if [ "${name}" = utt2spk ]; then
        awk -v u="${utt_prefix}" -v s="${spk_prefix}" '{ print u $1, s $2 }' "${f}"
    else
        awk -v u="${utt_prefix}" '{ print u $0 }' "${f}"
    fi | sort -s -k1,1 >"${dest}/${name}"
done
for f in "${src}"/spk2*; do
    [ -f "${f}" ] || continue
    name=$(basename "${f}")
    [ "${name}" = spk2utt ] && continue
    awk -v s="${spk_prefix}" '{ print s $0 }' "${f}" | sort -s -k1,1 >"${dest}/${name}"
done
"${utils}/utt2spk_to_spk2utt.sh" "${dest}/utt2spk" >"${dest}/spk2utt"
log "copied ${src} -> ${dest} ($(wc -l <"${dest}/utt2spk") utterances${utt_prefix:+, utt prefix ${utt_prefix}}${spk_prefix:+, spk prefix ${spk_prefix}})"
