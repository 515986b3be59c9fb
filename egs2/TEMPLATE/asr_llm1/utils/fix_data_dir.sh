#!/usr/bin/env bash
# Makes a Kaldi data dir consistent: sorts every per-utterance file (LC_ALL=C, first entry of a
# duplicated key kept), keeps only the utterances present in wav.scp, utt2spk and text (when there is
# a text), filters the other utt2* files to them and rebuilds spk2utt. Logs how many utterances were
# dropped and why; the originals and a list of the dropped ones (utt reason) go to <dir>/.backup/.
# An utterance whose transcript is empty (line = utt id only, e.g. non-speech) is kept.
set -euo pipefail
export LC_ALL=C

help_usage="Usage: fix_data_dir.sh <data-dir>"
. "$(dirname "$0")/parse_options.sh"

. "$(dirname "$0")/log.sh"

if [ $# -ne 1 ]; then
    echo "${help_usage}" >&2
    exit 1
fi
dir=${1%/}
utils=$(dirname "$0")

if [ ! -f "${dir}/wav.scp" ]; then
    log "ERROR: ${dir}/wav.scp does not exist"
    exit 1
fi
if [ ! -f "${dir}/utt2spk" ]; then
    if [ -f "${dir}/spk2utt" ]; then
        log "${dir}: no utt2spk; making it from spk2utt"
        "${utils}/spk2utt_to_utt2spk.sh" "${dir}/spk2utt" >"${dir}/utt2spk"
    else
        log "ERROR: ${dir} has neither utt2spk nor spk2utt"
        exit 1
    fi
fi

backup=${dir}/.backup
mkdir -p "${backup}"
tmp=$(mktemp -d)
trap 'rm -rf "${tmp}"' EXIT

files=(wav.scp utt2spk)
[ -f "${dir}/text" ] && files+=(text)
for f in "${dir}"/utt2*; do
    f=$(basename "${f}")
    [ -f "${dir}/${f}" ] && [ "${f}" != utt2spk ] && files+=("${f}")
done

# Sort, remove duplicated keys and (except in text) lines without a value.
for f in "${files[@]}"; do
    cp "${dir}/${f}" "${backup}/${f}"
    awk -v f="${f}" -v tmp="${tmp}" '
        NF == 0 { next }
        NF == 1 && f != "text" { print $1, "empty line in " f > (tmp "/bad." f); next }
        { print }' "${dir}/${f}" | sort -s -k1,1 >"${tmp}/${f}.sorted"
    ndup=$(cut -d' ' -f1 "${tmp}/${f}.sorted" | uniq -d | wc -l)
    if [ "${ndup}" -gt 0 ]; then
        log "WARNING: ${dir}/${f}: ${ndup} duplicated keys (e.g. $(cut -d' ' -f1 "${tmp}/${f}.sorted" | uniq -d | head -n1)); kept the first entry of each"
    fi
    sort -s -u -k1,1 "${tmp}/${f}.sorted" >"${tmp}/${f}"
    if [ -s "${tmp}/bad.${f}" ]; then
        log "WARNING: ${dir}/${f}: $(wc -l <"${tmp}/bad.${f}") lines without a value (e.g. $(head -n1 "${tmp}/bad.${f}" | cut -d' ' -f1)); dropped"
    fi
done

# Utterances present in all required files.
required=(wav.scp utt2spk)
[ -f "${dir}/text" ] && required+=(text)
for f in "${required[@]}"; do cut -d' ' -f1 "${tmp}/${f}" >"${tmp}/keys.${f}"; done
keyfiles=("${tmp}/keys.wav.scp" "${tmp}/keys.utt2spk")
if [ -f "${tmp}/keys.text" ]; then keyfiles+=("${tmp}/keys.text"); fi
awk -v nreq=${#required[@]} '
    FNR == 1 { fi++; name[fi] = FILENAME; sub(/.*\/keys\./, "", name[fi]) }
    { has[$1, fi] = 1; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } }
    END {
        for (i = 0; i < n; i++) {
            u = order[i]; missing = ""
            for (j = 1; j <= nreq; j++) if (!((u, j) in has)) missing = missing (missing == "" ? "" : ",") name[j]
            if (missing == "") print u > "/dev/stdout"
            else print u, "missing in " missing > "/dev/stderr"
        }
    }' "${keyfiles[@]}" \
    2>"${tmp}/dropped" | sort >"${tmp}/keep"
cat "${tmp}"/bad.* >>"${tmp}/dropped" 2>/dev/null || true
sort -u "${tmp}/dropped" -o "${backup}/dropped_utts.txt"

nbefore=$(sort -u "${tmp}/keys.wav.scp" "${tmp}/keys.utt2spk" | wc -l)
nkeep=$(wc -l <"${tmp}/keep")
if [ "${nkeep}" -eq 0 ]; then
    log "ERROR: ${dir}: no utterance is in all of: ${required[*]}"
    exit 1
fi

for f in "${files[@]}"; do
    "${utils}/filter_scp.sh" "${tmp}/keep" "${tmp}/${f}" >"${tmp}/${f}.kept"
    if [[ " ${required[*]} " != *" ${f} "* ]] && [ "$(wc -l <"${tmp}/${f}.kept")" -ne "${nkeep}" ]; then
        log "WARNING: ${dir}/${f} covers only $(wc -l <"${tmp}/${f}.kept") of ${nkeep} utterances; moved it to ${backup}/"
        rm "${dir}/${f}"
        continue
    fi
    mv "${tmp}/${f}.kept" "${dir}/${f}"
done
"${utils}/utt2spk_to_spk2utt.sh" "${dir}/utt2spk" >"${dir}/spk2utt"
for f in "${dir}"/spk2*; do
    f=$(basename "${f}")
    if [ "${f}" != spk2utt ] && [ -f "${dir}/${f}" ]; then
        cp "${dir}/${f}" "${backup}/${f}"
        sort -u -k1,1 "${backup}/${f}" | "${utils}/filter_scp.sh" "${dir}/spk2utt" - >"${dir}/${f}"
    fi
done

ndrop=$(cut -d' ' -f1 "${backup}/dropped_utts.txt" | sort -u | wc -l)
if [ "${ndrop}" -gt 0 ]; then
    reasons=$(cut -d' ' -f2- "${backup}/dropped_utts.txt" | sort | uniq -c | awk '{c = $1; $1 = ""; printf("%s%s:%s", sep, substr($0, 2), " " c); sep = "; "}')
    log "${dir}: kept ${nkeep} utterances, dropped ${ndrop} (${reasons}); list: ${backup}/dropped_utts.txt"
else
    log "${dir}: ${nkeep} utterances, nothing dropped (of ${nbefore})"
fi
