#!/usr/bin/env python3
"""Check that local HF-format foundation-model dirs are complete before training (stage 7, real models).

    python -m espnet_speechllm.bin.check_pretrained --encoder_dir /data/hubert-large-ll60k \\
        --llm_dir /data/vicuna-7b-v1.5

Reads configs, weight indexes and the tokenizer only (no weights are loaded). Weights are found as HF's
``from_pretrained`` looks for them: ``model.safetensors``, ``model.safetensors.index.json``, ``pytorch_model.bin``,
``pytorch_model.bin.index.json`` (the first present is used); a sharded checkpoint must hold every shard its
index lists. The encoder's ``preprocessor_config.json`` (waveform normalization, attention mask) must load when
present. Exit status 1 with one message per problem (one per missing shard) saying what to put where.
"""
import argparse
import logging
import sys

from espnet_speechllm.utils.cli import make_parser, setup_logging
from espnet_speechllm.utils.pretrained_dirs import check_encoder, check_llm

logger = logging.getLogger("check_pretrained")


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
