#!/usr/bin/env bash
# Stage 7 of synth_llm: builds the foundation models here (stand-ins for HuBERT-large and Vicuna-7B):
# a sentencepiece tokenizer and tiny Llama pretrained on data/local/lm_text.txt, and a tiny
# HuBERT-architecture encoder pretrained with CTC on data/pretrain_encoder; saved with save_pretrained
# as <out>/llm and <out>/encoder. Sizes and steps: conf/tiny_models.yaml.
set -euo pipefail

out=""                          # Output dir (gets encoder/ and llm/).
config=conf/tiny_models.yaml    # Model sizes and pretraining steps.
text=data/local/lm_text.txt     # LLM text pool (stage 1).
pretrain_data=data/pretrain_encoder  # Encoder pretraining data dir (stage 1).
force=false                     # Rebuild models that exist.
. utils/parse_options.sh
. ./path.sh

if [ -z "${out}" ]; then
    echo "local/foundation_models.sh: --out is required (see --help)" >&2
    exit 1
fi
for f in "${text}" "${pretrain_data}/wav.scp" "${config}"; do
    if [ ! -f "${f}" ]; then
        echo "local/foundation_models.sh: ${f} not found (stage 1 makes the corpus files)" >&2
        exit 1
    fi
done
_opts=""
${force} && _opts="--force"
# shellcheck disable=SC2086
python -m espnet_speechllm.bin.make_tiny_models --output_dir "${out}" --text "${text}" \
    --pretrain_data "${pretrain_data}" --config "${config}" ${_opts}
