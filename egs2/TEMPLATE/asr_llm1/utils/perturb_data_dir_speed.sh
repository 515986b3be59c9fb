#!/usr/bin/env bash
# Speed perturbation of a Kaldi data dir with sox "speed" (tempo and pitch together, sampling rate
# kept): every wav.scp entry becomes a "... | sox ... speed <factor> |" pipe, and utterance and speaker
# ids get the prefix "sp<factor>-" (ESPnet convention, e.g. sp0.9-1089-134686-0000). utt2dur is
# rescaled; utt2num_samples is not copied (stage 6 measures it). Entries must be audio files or
# pipes (not ark:offset): run it before dumping.
set -euo pipefail
export LC_ALL=C

help_usage="Usage: perturb_data_dir_speed.sh <factor> <src-dir> <dest-dir>   (e.g. 0.9 data/train data/train_sp0.9)"
. "$(dirname "$0")/parse_options.sh"

. "$(dirname "$0")/log.sh"

if [ $# -ne 3 ]; then
    echo "${help_usage}" >&2
    exit 1
fi
factor=$1
src=${2%/}
dest=${3%/}
utils=$(dirname "$0")
{ [[ ${factor} =~ ^[0-9]*\.?[0-9]+$ ]] && awk -v f="${factor}" 'BEGIN { exit !(f > 0) }'; } ||
    die "speed factor must be a positive number, got '${factor}'"
[ -f "${src}/wav.scp" ] || die "${src}/wav.scp does not exist"
[ ! -f "${src}/segments" ] || die "${src} has a segments file; segments are not supported"
bad=$(awk '$NF ~ /\.ark:[0-9]+$/ { print $1; exit }' "${src}/wav.scp")
[ -z "${bad}" ] || die "${src}/wav.scp: ${bad} is an ark entry; perturb the data dir before it is dumped"

prefix="sp${factor}-"
"${utils}/copy_data_dir.sh" --utt_prefix "${prefix}" --spk_prefix "${prefix}" "${src}" "${dest}"
awk -v p="${prefix}" -v f="${factor}" '
    {
        key = $1; v = $0; sub(/^[^ \t]+[ \t]+/, "", v)
        if (v ~ /\|[ \t]*$/) {
            sub(/[ \t]*\|[ \t]*$/, "", v)
            print p key, v " | sox -V1 -t wav - -t wav - speed " f " |"
        } else {
            if (v ~ /[ \t]/) v = "\x27" v "\x27"
            print p key, "sox -V1 " v " -t wav - speed " f " |"
        }
    }' "${src}/wav.scp" | sort -s -k1,1 >"${dest}/wav.scp"
if [ -f "${dest}/utt2dur" ]; then
    awk -v f="${factor}" '{ printf("%s %.3f\n", $1, $2 / f) }' "${dest}/utt2dur" >"${dest}/utt2dur.tmp"
    mv "${dest}/utt2dur.tmp" "${dest}/utt2dur"
fi
rm -f "${dest}/utt2num_samples"
log "${dest}: speed ${factor} of ${src} ($(wc -l <"${dest}/wav.scp") utterances)"
