#!/usr/bin/env bash
# Makes a subset of a Kaldi data dir: the first or last N utterances, N random ones (deterministic
# for a seed), or those in an utterance or speaker list. All per-utterance files are filtered and
# spk2utt rebuilt. Asking for more utterances than the source has is an error.
set -euo pipefail
export LC_ALL=C

help_usage="Usage: subset_data_dir.sh (--first N | --last N | --random N [--seed S] | --utt_list F | --spk_list F) <src-dir> <dest-dir>"
first=0       # Keep the first N utterances (sorted order).
last=0        # Keep the last N utterances.
random=0      # Keep N utterances drawn at random (without replacement).
seed=0        # Random seed for --random.
utt_list=""   # Keep the utterances listed (first field) in this file.
spk_list=""   # Keep the utterances of the speakers listed (first field) in this file.
. "$(dirname "$0")/parse_options.sh"

. "$(dirname "$0")/log.sh"

if [ $# -ne 2 ]; then
    echo "${help_usage}" >&2
    exit 1
fi
src=${1%/}
dest=${2%/}
utils=$(dirname "$0")
[ -f "${src}/utt2spk" ] || die "${src}/utt2spk does not exist"
[ "$(realpath -m "${src}")" != "$(realpath -m "${dest}")" ] || die "source and destination are the same: ${src}"

nmodes=0
for m in "${first}" "${last}" "${random}"; do [ "${m}" != 0 ] && nmodes=$((nmodes + 1)); done
[ -n "${utt_list}" ] && nmodes=$((nmodes + 1))
[ -n "${spk_list}" ] && nmodes=$((nmodes + 1))
[ "${nmodes}" -eq 1 ] || die "give exactly one of --first, --last, --random, --utt_list, --spk_list"

total=$(wc -l <"${src}/utt2spk")
tmp=$(mktemp -d)
trap 'rm -rf "${tmp}"' EXIT
for n in "${first}" "${last}" "${random}"; do
    [ "${n}" -le "${total}" ] || die "asked for ${n} utterances but ${src} has ${total}"
done
if [ "${first}" != 0 ]; then
    cut -d' ' -f1 "${src}/utt2spk" | head -n "${first}" >"${tmp}/keep"
elif [ "${last}" != 0 ]; then
    cut -d' ' -f1 "${src}/utt2spk" | tail -n "${last}" >"${tmp}/keep"
elif [ "${random}" != 0 ]; then
    cut -d' ' -f1 "${src}/utt2spk" | python3 -c '
import random, sys
keys = sys.stdin.read().split()
print("\n".join(sorted(random.Random(int(sys.argv[1])).sample(keys, int(sys.argv[2])))))' "${seed}" "${random}" >"${tmp}/keep"
elif [ -n "${utt_list}" ]; then
    "${utils}/filter_scp.sh" "${utt_list}" "${src}/utt2spk" | cut -d' ' -f1 >"${tmp}/keep"
else
    awk 'NR == FNR { keep[$1] = 1; next } $2 in keep { print $1 }' "${spk_list}" "${src}/utt2spk" >"${tmp}/keep"
fi
[ -s "${tmp}/keep" ] || die "the subset of ${src} is empty"

mkdir -p "${dest}"
for f in "${dest}"/utt2* "${dest}"/spk2* "${dest}/text" "${dest}/wav.scp"; do
    [ -f "${f}" ] && rm "${f}"
done
for f in "${src}"/wav.scp "${src}"/text "${src}"/utt2*; do
    [ -f "${f}" ] || continue
    "${utils}/filter_scp.sh" "${tmp}/keep" "${f}" >"${dest}/$(basename "${f}")"
done
"${utils}/utt2spk_to_spk2utt.sh" "${dest}/utt2spk" >"${dest}/spk2utt"
for f in "${src}"/spk2*; do
    name=$(basename "${f}")
    [ -f "${f}" ] && [ "${name}" != spk2utt ] && "${utils}/filter_scp.sh" "${dest}/spk2utt" "${f}" >"${dest}/${name}"
done
log "${dest}: $(wc -l <"${dest}/utt2spk") of ${total} utterances of ${src}"
