#!/usr/bin/env bash
# Stage 1 of synth_llm: the synthetic corpus -> data/{train,dev,test_clean,test_other,test_nonspeech_edges},
# data/pretrain_encoder (encoder pretraining audio + text) and data/local/lm_text.txt (LLM text pool).
# Speech is espeak-ng (16 kHz) of sentences from espnet_speechllm.datagen.sentences; see
#   python -m espnet_speechllm.bin.synth_corpus --help
set -euo pipefail

preset=default                     # Set sizes: ci (seconds of audio), debug (a few minutes) or default (about 3 h).
seed=0                             # Random seed (sentences, voices, rates, noise).
nj=2                               # Parallel synthesis jobs.
audio_dir=downloads/synth_corpus   # Where the wav files go.
synth_opts=""                      # Extra options of synth_corpus, e.g. "--num_train 500".
force=false                        # Remake the corpus.
. utils/parse_options.sh
. ./path.sh

# shellcheck disable=SC2086
python -m espnet_speechllm.bin.synth_corpus --data_dir data --audio_dir "${audio_dir}" --preset "${preset}" \
    --seed "${seed}" --nj "${nj}" --force "${force}" ${synth_opts}
