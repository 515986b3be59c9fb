#!/usr/bin/env bash
# Synthetic-speech recipe (the embedded default): espeak-ng corpus and tiny foundation models, all made
# here, offline, on 2 CPU cores. Quick check of every stage:
#   ./run.sh --local_data_opts "--preset debug" --train_config conf/train_debug.yaml
set -euo pipefail

train_set=train
valid_set=dev
test_sets="test_clean test_other test_nonspeech_edges"
train_config=conf/train.yaml
inference_config=conf/decode.yaml

./asr_llm.sh \
    --ngpu 0 \
    --nj 2 \
    --inference_nj 2 \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --local_data_opts "--preset default" \
    --nonspeech_source sox \
    --nonspeech_opts "--num_train 800 --num_test 100 --num_bank 100" \
    --speed_perturb_factors "0.9 1.0 1.1" \
    --noise_aug_ratio 0.3 \
    --nonspeech_ratio 0.05 \
    --nonspeech_edges_ratio 0.1 \
    --train_config "${train_config}" \
    --inference_config "${inference_config}" \
    --inference_args "--batch_size 16" \
    "$@"
