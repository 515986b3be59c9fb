#!/usr/bin/env bash
# Stage 1 of librispeech_llm: a local LibriSpeech tree -> Kaldi data dirs.
#   <LIBRISPEECH>/LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac + <spk>-<chapter>.trans.txt
#   -> data/<subset with _> (e.g. data/train_clean_100, data/dev_clean), data/dev (dev_clean + dev_other),
#      data/train_960 (when all three training subsets are asked for).
# wav.scp lists the flac files (read directly; no conversion). Nothing is downloaded unless
# --download true (LibriSpeech from https://www.openslr.org/12 and MUSAN from https://www.openslr.org/17).
set -euo pipefail

train_subsets="train-clean-100 train-clean-360 train-other-500"  # Training subsets.
eval_subsets="dev-clean dev-other test-clean test-other"        # Validation and test subsets.
download=false  # Download missing subsets (and MUSAN) from openslr.org into downloads/ (or db.sh's dirs).
force=false     # Remake data dirs that exist.
. utils/parse_options.sh
. ./db.sh
. ./path.sh

log() { printf '%s (%s:%s) %s\n' "$(date '+%Y-%m-%dT%H:%M:%S')" "${BASH_SOURCE[1]##*/}" "${BASH_LINENO[0]}" "$*" >&2; }
die() { printf '%s (%s:%s) ERROR: %s\n' "$(date '+%Y-%m-%dT%H:%M:%S')" "${BASH_SOURCE[1]##*/}" "${BASH_LINENO[0]}" "$*" >&2; exit 1; }

root=${LIBRISPEECH:-downloads}
# accept LIBRISPEECH pointing at the dir holding LibriSpeech/ or at LibriSpeech/ itself
if [ -d "${root}/LibriSpeech" ] || [ "$(basename "${root}")" != LibriSpeech ]; then
    corpus=${root}/LibriSpeech
else
    corpus=${root}
fi

download_file() {  # <url> <dest>
    if command -v wget >/dev/null; then
        wget --continue --tries=3 -O "$2" "$1"
    else
        curl --fail --location --retry 3 --continue-at - -o "$2" "$1"
    fi
}

missing=()
for subset in ${train_subsets} ${eval_subsets}; do
    [ -d "${corpus}/${subset}" ] || missing+=("${subset}")
done
if [ ${#missing[@]} -gt 0 ]; then
    if ${download}; then
        mkdir -p "${root}"
        for subset in "${missing[@]}"; do
            log "downloading ${subset} from https://www.openslr.org/resources/12/${subset}.tar.gz into ${root}"
            download_file "https://www.openslr.org/resources/12/${subset}.tar.gz" "${root}/${subset}.tar.gz"
            tar -xzf "${root}/${subset}.tar.gz" -C "${root}"
            rm "${root}/${subset}.tar.gz"
        done
        corpus=${root}/LibriSpeech
    else
        die "LibriSpeech subsets not found: ${missing[*]} (looked in ${corpus}/; LIBRISPEECH in db.sh is '${LIBRISPEECH}'). Put the corpus at <dir>/LibriSpeech/<subset>/<speaker>/<chapter>/{*.flac,*.trans.txt} and set LIBRISPEECH=<dir> in db.sh, or run ./run.sh --stage 1 --stop_stage 1 --local_data_opts \"--download true\" to download it from https://www.openslr.org/12 into ${root}/."
    fi
fi
if ${download}; then
    musan=${MUSAN:-downloads/musan}
    if [ ! -d "${musan}/noise" ]; then
        parent=$(dirname "${musan}")
        mkdir -p "${parent}"
        log "downloading MUSAN from https://www.openslr.org/resources/17/musan.tar.gz into ${parent}"
        download_file "https://www.openslr.org/resources/17/musan.tar.gz" "${parent}/musan.tar.gz"
        tar -xzf "${parent}/musan.tar.gz" -C "${parent}"
        rm "${parent}/musan.tar.gz"
        [ "$(basename "${musan}")" = musan ] || log "MUSAN is in ${parent}/musan: set MUSAN=${parent}/musan in db.sh"
    fi
fi

corpus=$(cd "${corpus}" && pwd)
prepare_subset() {  # <subset> -> data/<subset with _>
    local subset=$1 dir=data/${1//-/_} src=${corpus}/$1 settings
    settings="src=${src}"
    if ! ${force} && [ -f "${dir}/.done" ]; then
        if [ "$(cat "${dir}/.done")" = "${settings}" ]; then
            log "${dir} is done; skipping (--force true remakes it)"
            return
        fi
        die "${dir} was made from $(cat "${dir}/.done"); now asked: ${settings}. Pass --force true to remake it."
    fi
    if [ -e "${dir}" ] && ! ${force} && [ ! -f "${dir}/.done" ]; then
        die "${dir} exists but was not made by this script; pass --force true to overwrite it"
    fi
    rm -rf "${dir}"
    mkdir -p "${dir}"
    find "${src}" -name '*.trans.txt' -print0 | sort -z >"${dir}/.trans_files"
    [ -s "${dir}/.trans_files" ] || die "no *.trans.txt files under ${src}"
    # text: "<utt> <TRANSCRIPT>"; wav.scp: "<utt> <chapter dir>/<utt>.flac"; utt2spk: speaker = first id field
    xargs -0 cat <"${dir}/.trans_files" | LC_ALL=C sort -k1,1 >"${dir}/text"
    # shellcheck disable=SC2016  # an awk program: $1 is awk's field
    xargs -0 awk '{ d = FILENAME; sub(/\/[^\/]*$/, "", d); print $1, d "/" $1 ".flac" }' <"${dir}/.trans_files" |
        LC_ALL=C sort -k1,1 >"${dir}/wav.scp"
    awk '{ split($1, f, "-"); print $1, f[1] }' "${dir}/text" >"${dir}/utt2spk"
    utils/utt2spk_to_spk2utt.sh "${dir}/utt2spk" >"${dir}/spk2utt"
    rm "${dir}/.trans_files"
    utils/validate_data_dir.sh "${dir}"
    echo "${settings}" >"${dir}/.done"
}

for subset in ${train_subsets} ${eval_subsets}; do
    prepare_subset "${subset}"
done

combine() {  # <dest> <src>...
    local dest=$1
    shift
    if ! ${force} && [ -f "${dest}/.done" ] && [ "$(cat "${dest}/.done")" = "$*" ]; then
        log "${dest} is done; skipping (--force true remakes it)"
        return
    fi
    if [ -e "${dest}" ] && ! ${force} && [ ! -f "${dest}/.done" ]; then
        die "${dest} exists but was not made by this script; pass --force true to overwrite it"
    fi
    rm -rf "${dest}"
    utils/combine_data.sh "${dest}" "$@"
    echo "$*" >"${dest}/.done"
}
if [[ " ${eval_subsets} " == *" dev-clean "* ]] && [[ " ${eval_subsets} " == *" dev-other "* ]]; then
    combine data/dev data/dev_clean data/dev_other
fi
all_train=true
for subset in train-clean-100 train-clean-360 train-other-500; do
    [[ " ${train_subsets} " == *" ${subset} "* ]] || all_train=false
done
if ${all_train}; then
    combine data/train_960 data/train_clean_100 data/train_clean_360 data/train_other_500
fi
log "LibriSpeech data dirs ready: $(for s in ${train_subsets} ${eval_subsets}; do printf 'data/%s ' "${s//-/_}"; done)$([ -d data/dev ] && echo "data/dev ")$(${all_train} && echo data/train_960)"
