#!/usr/bin/env bash
# Combines Kaldi data dirs into one: wav.scp, utt2spk and text plus the utt2* files that every source
# has (e.g. utt2num_samples), sorted; spk2utt rebuilt. An utterance id found in two sources is an
# error naming it and the sources. A text missing from some sources is an error (use empty lines,
# "utt" alone, for non-speech).
set -euo pipefail
export LC_ALL=C

help_usage="Usage: combine_data.sh [options] <dest-dir> <src-dir1> <src-dir2> ..."
skip_validate=false  # Do not validate the combined dir.
. "$(dirname "$0")/parse_options.sh"

. "$(dirname "$0")/log.sh"

if [ $# -lt 2 ]; then
    echo "${help_usage}" >&2
    exit 1
fi
dest=${1%/}
shift
utils=$(dirname "$0")
srcs=()
for src in "$@"; do
    src=${src%/}
    [ "$(realpath -m "${src}")" != "$(realpath -m "${dest}")" ] || die "destination ${dest} is also a source"
    for f in wav.scp utt2spk; do
        [ -f "${src}/${f}" ] || die "${src}/${f} does not exist"
    done
    srcs+=("${src}")
done

# Files every source has.
files=(wav.scp utt2spk)
ntext=0
for src in "${srcs[@]}"; do [ -f "${src}/text" ] && ntext=$((ntext + 1)); done
if [ "${ntext}" -eq ${#srcs[@]} ]; then
    files+=(text)
elif [ "${ntext}" -gt 0 ]; then
    die "only ${ntext} of ${#srcs[@]} sources have a text file ($(for s in "${srcs[@]}"; do [ -f "${s}/text" ] || printf '%s ' "${s}"; done)lack it)"
fi
for f in "${srcs[0]}"/utt2*; do
    f=$(basename "${f}")
    [ "${f}" = utt2spk ] || [ ! -f "${srcs[0]}/${f}" ] && continue
    all=true
    for src in "${srcs[@]}"; do [ -f "${src}/${f}" ] || all=false; done
    if ${all}; then files+=("${f}"); else log "WARNING: ${f} is not in every source; not combined"; fi
done

dup=$(for src in "${srcs[@]}"; do cut -d' ' -f1 "${src}/utt2spk"; done | sort | uniq -d | head -n1)
if [ -n "${dup}" ]; then
    die "utterance id ${dup} is in more than one source: $(for s in "${srcs[@]}"; do grep -q "^${dup} " "${s}/utt2spk" && printf '%s ' "${s}"; done)"
fi

mkdir -p "${dest}"
for f in "${dest}"/utt2* "${dest}"/spk2* "${dest}/text" "${dest}/wav.scp"; do
    [ -f "${f}" ] && rm "${f}"
done
for f in "${files[@]}"; do
    for src in "${srcs[@]}"; do cat "${src}/${f}"; done | sort -s -k1,1 >"${dest}/${f}"
done
"${utils}/utt2spk_to_spk2utt.sh" "${dest}/utt2spk" >"${dest}/spk2utt"

counts=""
for src in "${srcs[@]}"; do counts+="${counts:+ + }$(wc -l <"${src}/utt2spk") (${src})"; done
log "${dest}: ${counts} = $(wc -l <"${dest}/utt2spk") utterances"
if ! ${skip_validate}; then
    opts="--check_files false"
    [[ " ${files[*]} " == *" text "* ]] || opts+=" --no_text true"
    # shellcheck disable=SC2086
    "${utils}/validate_data_dir.sh" ${opts} "${dest}"
fi
