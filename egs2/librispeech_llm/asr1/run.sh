#!/usr/bin/env bash
# The paper's recipe: LibriSpeech 960 h (+ speed perturbation, MUSAN noise and non-speech) with
# HuBERT-large-ll60k -> Conv1dMLP -> Vicuna-7B, LoRA on both sides. Set the paths in db.sh first.
# Disk: the noisy copies of stage 4 are wav files (0.3 x 3 x 960 h: ~100 GB); the dump of stage 6 holds
# all training audio as flac (~3,700 h: ~250 GB).
set -euo pipefail
. ./db.sh

train_set=train_960
valid_set=dev
test_sets="dev_clean dev_other test_clean test_other"
train_config=conf/train_hubert_conv1dmlp_vicuna_lora.yaml
inference_config=conf/decode_beam4_loop6_ngram13_lp.yaml  # HF 3-gram mode of the paper: conf/decode_beam4_ngram3_lp.yaml

./asr_llm.sh \
    --ngpu 1 \
    --nj 16 \
    --inference_nj 8 \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --nonspeech_source musan \
    --musan_dir "${MUSAN:-downloads/musan}" \
    --speed_perturb_factors "0.9 1.0 1.1" \
    --noise_aug_ratio 0.3 \
    --noise_snr_range "5 20" \
    --nonspeech_ratio 0.05 \
    --max_wav_duration 20 \
    --audio_format flac \
    --train_config "${train_config}" \
    --inference_config "${inference_config}" \
    "$@"
