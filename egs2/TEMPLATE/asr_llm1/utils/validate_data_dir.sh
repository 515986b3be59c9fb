#!/usr/bin/env bash
# Checks a Kaldi data dir (wav.scp, utt2spk, spk2utt, text and any utt2* files): every file sorted
# (LC_ALL=C) with unique keys, the same utterances everywhere, spk2utt matching utt2spk, speaker ids
# sorting like utterance ids, text valid UTF-8, no carriage return (CRLF files), audio files of plain
# wav.scp entries present.
# Prints a one-line summary; on a problem names the file and line and exits 1.
# Empty transcripts (line = utt id only, e.g. non-speech) are valid and counted.
set -euo pipefail
export LC_ALL=C

help_usage="Usage: validate_data_dir.sh [options] <data-dir>"
no_text=false      # The dir has no text file (e.g. an unlabeled noise bank).
check_files=true   # Check that the audio files of plain wav.scp entries exist (pipes and arks are not run).
strict=false       # Missing audio files are errors (default: a warning with their count).
. "$(dirname "$0")/parse_options.sh"

. "$(dirname "$0")/log.sh"

if [ $# -ne 1 ]; then
    echo "${help_usage}" >&2
    exit 1
fi
dir=${1%/}
utils=$(dirname "$0")
[ -d "${dir}" ] || die "no such directory: ${dir}"
tmp=$(mktemp -d)
trap 'rm -rf "${tmp}"' EXIT

required=(wav.scp utt2spk spk2utt)
${no_text} || required+=(text)
for f in "${required[@]}"; do
    [ -f "${dir}/${f}" ] || die "${dir}/${f} is missing (utils/fix_data_dir.sh makes spk2utt from utt2spk)"
done

# text must be UTF-8: name the first bad line.
if [ -f "${dir}/text" ]; then
    bad=$(LC_ALL=C.UTF-8 grep -naxv '.*' "${dir}/text" | head -n1 | cut -d: -f1 || true)
    [ -z "${bad}" ] || die "${dir}/text line ${bad} is not valid UTF-8"
fi

files=(wav.scp utt2spk)
[ -f "${dir}/text" ] && files+=(text)
for f in "${dir}"/utt2*; do
    f=$(basename "${f}")
    [ -f "${dir}/${f}" ] && [ "${f}" != utt2spk ] && files+=("${f}")
done
for f in "${files[@]}"; do
    awk -v f="${dir}/${f}" -v name="${f}" '
        /\r/ { printf("%s line %d holds a carriage return (Windows CRLF line endings?): paths and keys would end in it; convert the file, e.g. sed -i \"s/\\r$//\" %s\n", f, NR, f); exit 1 }
        NF == 0 { printf("%s line %d is empty\n", f, NR); exit 1 }
        NF == 1 && name != "text" { printf("%s line %d has a key but no value: %s\n", f, NR, $0); exit 1 }
        NR > 1 && $1 <= prev { printf("%s line %d: key %s is %s (previous: %s); run utils/fix_data_dir.sh %s\n", f, NR, $1, ($1 == prev ? "duplicated" : "out of order"), prev, substr(f, 1, length(f) - length(name) - 1)); exit 1 }
        { prev = $1 }' "${dir}/${f}" >"${tmp}/err" || die "$(cat "${tmp}/err")"
    cut -d' ' -f1 "${dir}/${f}" >"${tmp}/keys.${f}"
done
for f in "${files[@]}"; do
    if ! cmp -s "${tmp}/keys.wav.scp" "${tmp}/keys.${f}"; then
        only_a=$(comm -23 "${tmp}/keys.wav.scp" "${tmp}/keys.${f}" | wc -l)
        only_b=$(comm -13 "${tmp}/keys.wav.scp" "${tmp}/keys.${f}" | wc -l)
        ex=$( (comm -23 "${tmp}/keys.wav.scp" "${tmp}/keys.${f}"; comm -13 "${tmp}/keys.wav.scp" "${tmp}/keys.${f}") | head -n1)
        die "${dir}: wav.scp and ${f} have different utterances (${only_a} only in wav.scp, ${only_b} only in ${f}, e.g. ${ex}); run utils/fix_data_dir.sh ${dir}"
    fi
done

"${utils}/utt2spk_to_spk2utt.sh" "${dir}/utt2spk" >"${tmp}/spk2utt"
cmp -s "${tmp}/spk2utt" "${dir}/spk2utt" ||
    die "${dir}/spk2utt does not match utt2spk; run utils/fix_data_dir.sh ${dir}"
sort -c -k1,1 "${tmp}/spk2utt" 2>/dev/null ||
    die "${dir}/utt2spk: sorted by utterance, the speakers are not sorted; make speaker ids prefixes of utterance ids"

nutt=$(wc -l <"${tmp}/keys.wav.scp")
nspk=$(wc -l <"${dir}/spk2utt")
summary="${dir}: ${nutt} utterances, ${nspk} speakers"
if [ -f "${dir}/text" ]; then
    nempty=$(awk 'NF == 1' "${dir}/text" | wc -l)
    summary+=", ${nempty} empty transcripts"
fi

if ${check_files}; then
    awk '{ $1 = ""; v = substr($0, 2) } v !~ /\|[ \t]*$/ && v !~ /\.ark:[0-9]+$/ { print v }' "${dir}/wav.scp" >"${tmp}/paths"
    while IFS= read -r p; do
        [ -f "${p}" ] || echo "${p}"
    done <"${tmp}/paths" >"${tmp}/missing"
    nmiss=$(wc -l <"${tmp}/missing")
    if [ "${nmiss}" -gt 0 ]; then
        msg="${dir}/wav.scp: ${nmiss} audio files do not exist, e.g. $(head -n1 "${tmp}/missing")"
        ${strict} && die "${msg}"
        log "WARNING: ${msg} (they will be dropped when dumped)"
        summary+=", ${nmiss} missing audio files"
    fi
fi
log "${summary}: OK"
