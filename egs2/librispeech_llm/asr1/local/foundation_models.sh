#!/usr/bin/env bash
# Stage 7 of librispeech_llm: checks the local Hugging Face dirs of the speech encoder (HUBERT_DIR,
# facebook/hubert-large-ll60k) and the LLM (VICUNA_DIR, lmsys/vicuna-7b-v1.5) set in db.sh, then links
# them as <out>/encoder and <out>/llm. Nothing is downloaded.
set -euo pipefail

out=""       # Output dir (gets the encoder and llm links).
force=false  # Replace existing encoder/llm entries of <out>.
. utils/parse_options.sh
. ./db.sh
. ./path.sh

log() { printf '%s (%s:%s) %s\n' "$(date '+%Y-%m-%dT%H:%M:%S')" "${BASH_SOURCE[1]##*/}" "${BASH_LINENO[0]}" "$*" >&2; }
die() { printf '%s (%s:%s) ERROR: %s\n' "$(date '+%Y-%m-%dT%H:%M:%S')" "${BASH_SOURCE[1]##*/}" "${BASH_LINENO[0]}" "$*" >&2; exit 1; }

[ -n "${out}" ] || die "--out is required (see --help)"
[ -n "${HUBERT_DIR}" ] || die "HUBERT_DIR is empty in db.sh: set it to a local copy of facebook/hubert-large-ll60k (e.g. made with: hf download facebook/hubert-large-ll60k --local-dir /models/hubert-large-ll60k)"
[ -n "${VICUNA_DIR}" ] || die "VICUNA_DIR is empty in db.sh: set it to a local copy of lmsys/vicuna-7b-v1.5 (e.g. made with: hf download lmsys/vicuna-7b-v1.5 --local-dir /models/vicuna-7b-v1.5)"

python -m espnet_speechllm.bin.check_pretrained --encoder_dir "${HUBERT_DIR}" --llm_dir "${VICUNA_DIR}"

mkdir -p "${out}"
link() {  # <target dir> <link name>
    local target link=${out}/$2
    target=$(cd "$1" && pwd)
    if [ -L "${link}" ] && [ "$(readlink "${link}")" = "${target}" ]; then
        log "${link} -> ${target} (already linked)"
        return
    fi
    if [ -e "${link}" ] || [ -L "${link}" ]; then
        ${force} || die "${link} exists and is not a link to ${target}; pass --force true to replace it"
        rm -rf "${link}"
    fi
    ln -s "${target}" "${link}"
    log "${link} -> ${target}"
}
link "${HUBERT_DIR}" encoder
link "${VICUNA_DIR}" llm
