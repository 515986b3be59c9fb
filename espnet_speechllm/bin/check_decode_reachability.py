#!/usr/bin/env python3
"""Can the decoder produce the references at all? Checks a decoding config against a set's transcripts.

    python -m espnet_speechllm.bin.check_decode_reachability --train_config exp/x/config.yaml \\
        --decode_config conf/decode.yaml --text dump/raw/test_clean/text \\
        [--utt2num_samples dump/raw/test_clean/utt2num_samples | --utt2dur data/test_clean/utt2dur] \\
        [--tokenizer_dir /data/vicuna-7b-v1.5] [--max_unreachable_percent 0.1] [--output_json report.json]

Each reference is tokenized exactly as training does (the train config's ``llm_conf.model_dir`` tokenizer, or
``--tokenizer_dir``, and its ``text_case``), then followed by EOS as the decoder would emit it. A reference is
unreachable when
  - a decoding constraint bans one of its tokens or its EOS (``no_repeat_ngram_size``, ``no_loop_ngram_size``,
    ``min_new_tokens``): no search, however good the model, can output it;
  - it does not fit the token budget: ``max_new_tokens`` (EOS included) or, with ``--utt2dur`` or
    ``--utt2num_samples``, the duration bound ``ceil(max_tokens_per_second * seconds) + max_tokens_constant``.
It prints how many and which (with the repeated n-gram), and exits with status 1 when more than
``--max_unreachable_percent`` of the references are unreachable. Stage 11 of asr_llm.sh runs it on each test set
before decoding and warns.
"""
import argparse
import sys
from typing import List, Optional

from espnet_speechllm.decode.config import load_decode_config
from espnet_speechllm.utils.cli import make_parser, run_main, setup_logging


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument("--train_config", required=True, help="training YAML or the experiment's config.yaml "
                        "(llm_conf.model_dir gives the tokenizer; text_case the case folding)")
    parser.add_argument("--decode_config", required=True, help="decoding options YAML (conf/decode*.yaml)")
    parser.add_argument("--text", required=True, help="Kaldi text of the references (utt_id words...)")
    parser.add_argument("--tokenizer_dir", default=None, help="overrides llm_conf.model_dir of the train config")
    durations = parser.add_mutually_exclusive_group()
    durations.add_argument("--utt2num_samples", default=None, help="16 kHz sample counts: turns on the "
                           "max_tokens_per_second bound")
    durations.add_argument("--utt2dur", default=None, help="durations in seconds: turns on the max_tokens_per_second "
                           "bound")
    parser.add_argument("--max_unreachable_percent", type=float, default=0.1,
                        help="exit status 1 when more than this percentage of references is unreachable")
    parser.add_argument("--num_examples", type=int, default=5, help="unreachable references listed per reason")
    parser.add_argument("--output_json", default=None, help="write the figures and every unreachable utterance here")
    parser.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    # Imported here: --help does not load torch and the task.
    from espnet_speechllm.decode.reachability import check_references

    config = load_decode_config(args.decode_config)
    if not check_references(config, args.decode_config, args.text, args.train_config, args.tokenizer_dir,
                            args.utt2num_samples, args.utt2dur, args.num_examples, args.output_json,
                            args.max_unreachable_percent):
        sys.exit(1)


if __name__ == "__main__":
    run_main(main)
