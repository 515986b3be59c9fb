#!/usr/bin/env python3
"""Check that local HF-format foundation-model dirs are complete before training (stage 7, real models).

    python -m espnet_speechllm.bin.check_pretrained --encoder_dir /data/hubert-large-ll60k \\
        --llm_dir /data/vicuna-7b-v1.5

Reads configs and the tokenizer only (no weights are loaded). Exit status 1 with one message per problem
saying what to put where.
"""
import argparse
import glob
import json
import logging
import os
import sys
from typing import List

from espnet_speechllm.utils.cli import make_parser, setup_logging

logger = logging.getLogger("check_pretrained")

ENCODER_TYPES = ("hubert", "wavlm", "wav2vec2")
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")


def _has_weights(model_dir: str) -> bool:
    return any(glob.glob(os.path.join(model_dir, p)) for p in WEIGHT_PATTERNS)


def check_dir(model_dir: str, what: str, example: str) -> List[str]:
    if not model_dir:
        return [f"{what} dir is not set: set it in db.sh (e.g. a local copy of {example})"]
    if not os.path.isdir(model_dir):
        return [f"{what} dir {model_dir!r} does not exist: put a local HF-format copy of {example} there"]
    problems = []
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        problems.append(f"{model_dir}: no config.json (expected an HF-format copy of {example})")
    if not _has_weights(model_dir):
        problems.append(f"{model_dir}: no weights (*.safetensors or pytorch_model*.bin)")
    return problems


def check_encoder(encoder_dir: str) -> List[str]:
    problems = check_dir(encoder_dir, "encoder", "facebook/hubert-large-ll60k")
    if not problems:
        with open(os.path.join(encoder_dir, "config.json")) as f:
            model_type = json.load(f).get("model_type")
        if model_type not in ENCODER_TYPES:
            problems.append(f"{encoder_dir}: model_type={model_type!r}, expected one of {ENCODER_TYPES}")
    return problems


def check_llm(llm_dir: str) -> List[str]:
    problems = check_dir(llm_dir, "LLM", "lmsys/vicuna-7b-v1.5")
    if problems:
        return problems
    if not any(os.path.isfile(os.path.join(llm_dir, n)) for n in ("tokenizer.model", "tokenizer.json")):
        return [f"{llm_dir}: no tokenizer (tokenizer.model or tokenizer.json)"]
    from espnet_speechllm.llm.hf_causal_lm import load_tokenizer

    try:
        load_tokenizer(llm_dir)
    except Exception as e:  # report any tokenizer failure as a problem of that dir
        problems.append(f"{llm_dir}: tokenizer does not load ({type(e).__name__}: {e})")
    return problems


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument("--encoder_dir", default="", help="local HF dir of the speech encoder")
    parser.add_argument("--llm_dir", default="", help="local HF dir of the LLM (with its tokenizer)")
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    problems = check_encoder(args.encoder_dir) + check_llm(args.llm_dir)
    for p in problems:
        logger.error(p)
    if problems:
        return 1
    logger.info(f"encoder {args.encoder_dir} and LLM {args.llm_dir}: complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
