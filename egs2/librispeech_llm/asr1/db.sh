# shellcheck shell=bash
# Corpus and model locations (empty: not set; a value in the environment is used if set).
# LIBRISPEECH: the directory that holds LibriSpeech/ (LibriSpeech/<subset>/<spk>/<chapter>/*.flac + *.trans.txt);
#   empty: downloads/ (what local/data.sh --download true fills from https://www.openslr.org/12).
LIBRISPEECH=${LIBRISPEECH:-}
# MUSAN: the MUSAN directory (musan/{noise,music,speech}); empty: downloads/musan (https://www.openslr.org/17).
MUSAN=${MUSAN:-}
# HUBERT_DIR: local Hugging Face copy of facebook/hubert-large-ll60k (config.json + weights).
HUBERT_DIR=${HUBERT_DIR:-}
# VICUNA_DIR: local Hugging Face copy of lmsys/vicuna-7b-v1.5 (config.json, weights, tokenizer).
VICUNA_DIR=${VICUNA_DIR:-}
