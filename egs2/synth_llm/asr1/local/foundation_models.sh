#!/usr/bin/env bash
# Stage 7 of synth_llm: the foundation models (stand-ins for HuBERT-large and Vicuna-7B) -> <out>/{encoder,llm}.
#
# By default it installs the pre-built stand-ins shipped in pretrained_models/ (the way a LibriSpeech user
# downloads HuBERT and Vicuna): their SHA256SUMS are checked, and so is the hash of the config that made them
# against --config, so a stand-in that no longer matches its config is never used. --rebuild true makes them
# from scratch instead with the project's own code (espnet_speechllm.bin.make_tiny_models): a sentencepiece
# tokenizer and a tiny Llama pretrained on data/local/lm_text.txt, and a tiny HuBERT-architecture encoder
# pretrained with CTC on data/pretrain_encoder. Sizes, steps and the measured build time: conf/tiny_models.yaml.
# To refresh the shipped copy after changing the config (only the model whose settings changed is retrained,
# see pretrained_models/{llm,encoder}.done):
#   local/foundation_models.sh --rebuild true --out pretrained_models --force true
set -euo pipefail

out=""                          # Output dir (gets encoder/ and llm/).
config=conf/tiny_models.yaml    # Model sizes and pretraining steps.
text=data/local/lm_text.txt     # LLM text pool (stage 1).
pretrain_data=data/pretrain_encoder  # Encoder pretraining data dir (stage 1).
shipped=pretrained_models       # The pre-built stand-ins (made by --rebuild true --out pretrained_models).
rebuild=false                   # Build from scratch instead of installing the shipped stand-ins.
force=false                     # Redo an installation or a build that exists.
. utils/parse_options.sh
. ./path.sh
. utils/log.sh

[ -n "${out}" ] || die "--out is required (see --help)"
[ -f "${config}" ] || die "--config ${config}: no such file"
config_sha=$(sha256sum "${config}" | cut -d' ' -f1)
marker="${out}/tiny_models.done"

if ! ${rebuild}; then
    [ -f "${shipped}/build_info.json" ] || die "${shipped}/build_info.json not found: no shipped stand-ins here; build them with --rebuild true"
    # The shipped files are what their checksums say, and they were made from this very config.
    (cd "${shipped}" && sha256sum --check --quiet SHA256SUMS) \
        || die "${shipped}: files do not match ${shipped}/SHA256SUMS (edited or damaged); restore them (git checkout ${shipped}) or rebuild with --rebuild true"
    shipped_sha=$(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["sha256"].get("config", ""))' "${shipped}/build_info.json")
    if [ "${shipped_sha}" != "${config_sha}" ]; then
        die "the stand-ins in ${shipped} were built from another ${config} (sha256 ${shipped_sha:0:12}, now ${config_sha:0:12}): rebuild them with --foundation_opts \"--rebuild true\" (see ${shipped}/build_info.json for the time it takes) or restore the config"
    fi
    settings="shipped=${shipped} sums=$(sha256sum "${shipped}/SHA256SUMS" | cut -d' ' -f1)"
    if [ -f "${marker}" ] && ! ${force}; then
        if [ "$(cat "${marker}")" = "${settings}" ]; then
            log "${out}: the shipped stand-ins are installed; skipping (--force true reinstalls)"
            exit 0
        fi
        case "$(cat "${marker}")" in
            shipped=*) ;;  # an older shipped copy: replaced by the current one
            *) die "${out} holds stand-ins built here with --rebuild true; keep them with --foundation_opts \"--rebuild true\", or replace them with the shipped ones with --force true" ;;
        esac
    elif [ -e "${out}/encoder" ] || [ -e "${out}/llm" ]; then
        ${force} || die "${out} holds models that stage 7 did not install (or an interrupted install); --force true replaces them"
    fi
    rm -rf "${out}/encoder" "${out}/llm" "${marker}"
    mkdir -p "${out}"
    cp -r "${shipped}/encoder" "${shipped}/llm" "${shipped}/build_info.json" "${out}/"
    echo "${settings}" >"${marker}"
    log "installed the shipped stand-ins: ${shipped} -> ${out}/{encoder,llm} (a build from scratch takes $(python -c 'import json, sys; i = json.load(open(sys.argv[1])); print(round(i.get("from_scratch_time_s", i["wall_time_s"]) / 60, 1))' "${shipped}/build_info.json") min on 2 cores, by: $(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["command"])' "${shipped}/build_info.json"))"
    exit 0
fi

for f in "${text}" "${pretrain_data}/wav.scp"; do
    [ -f "${f}" ] || die "${f} not found (stage 1 makes the corpus files)"
done
# Installed shipped stand-ins can be installed again at any time: a rebuild replaces them without --force.
if [ -f "${marker}" ] && grep -q '^shipped=' "${marker}"; then
    log "${out}: replacing the installed shipped stand-ins by a build from scratch"
    rm -rf "${out}/encoder" "${out}/llm" "${marker}"
fi
python -m espnet_speechllm.bin.make_tiny_models --output_dir "${out}" --text "${text}" \
    --pretrain_data "${pretrain_data}" --config "${config}" --force "${force}"
