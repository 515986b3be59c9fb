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
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import yaml

from espnet_speechllm.decode.config import BeamSearchConfig
from espnet_speechllm.decode.constraints import Ban, SearchConstraints
from espnet_speechllm.utils.cli import UserError, make_parser, run_main, setup_logging

logger = logging.getLogger("check_decode_reachability")


@dataclass
class Reachability:
    """What a decoding config leaves reachable of a set of tokenized references (EOS not included in the ids)."""

    num_refs: int
    banned: Dict[str, Ban] = field(default_factory=dict)  # utt -> first banned step
    over_max_new_tokens: Dict[str, int] = field(default_factory=dict)  # utt -> tokens incl. EOS
    over_duration_bound: Dict[str, tuple] = field(default_factory=dict)  # utt -> (tokens incl. EOS, budget, s)

    @property
    def unreachable(self) -> List[str]:
        return sorted(set(self.banned) | set(self.over_max_new_tokens) | set(self.over_duration_bound))

    def percent(self, count: int) -> float:
        return 100.0 * count / self.num_refs if self.num_refs else 0.0


def reachability(token_ids: Dict[str, Sequence[int]], config: BeamSearchConfig, eos_ids: Sequence[int],
                 durations: Optional[Dict[str, float]] = None, source: str = "durations") -> Reachability:
    """Check each reference (ids without EOS) against the constraints and token budgets of ``config``.

    ``durations`` (seconds per utterance) turns on the ``max_tokens_per_second`` bound; an utterance missing from
    it is an error naming the utterance and ``source``.
    """
    utts = list(token_ids)
    result = Reachability(len(utts))
    constraints = SearchConstraints.from_config(config, eos_ids)
    bans = constraints.first_bans([list(token_ids[u]) + [eos_ids[0]] for u in utts])
    for utt, ban in zip(utts, bans):
        if ban is not None:
            result.banned[utt] = ban
    for utt in utts:
        length = len(token_ids[utt]) + 1  # + EOS, counted by the budget
        if length > config.max_new_tokens:
            result.over_max_new_tokens[utt] = length
        elif durations is not None and config.max_tokens_per_second is not None:
            if utt not in durations:
                raise UserError(f"{source} has no duration for utterance {utt!r}")
            budget = config.max_new_tokens_for_duration(durations[utt])
            if length > budget:
                result.over_duration_bound[utt] = (length, budget, durations[utt])
    return result


def load_yaml(path: str, what: str) -> dict:
    with open(path, encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    if not isinstance(conf, dict):
        raise UserError(f"{path}: expected a mapping of {what}, got {type(conf).__name__}")
    return conf


def training_tokenizer(train_config: str, tokenizer_dir: Optional[str] = None):
    """The transcript preprocessing of training (``SpeechLLMTask.build_preprocess_fn``) for a train config."""
    from espnet_speechllm.tasks.speechllm import SpeechLLMTask

    conf = load_yaml(train_config, "training options")
    llm_conf = dict(conf.get("llm_conf") or {})
    if tokenizer_dir:
        llm_conf["model_dir"] = tokenizer_dir
    if not llm_conf.get("model_dir"):
        raise UserError(f"{train_config}: llm_conf.model_dir is not set; give --tokenizer_dir")
    if not conf.get("use_preprocessor", True):
        raise UserError(f"{train_config}: use_preprocessor is false, so training does not tokenize transcripts")
    default_case = SpeechLLMTask.get_parser().get_default("text_case")
    args = argparse.Namespace(use_preprocessor=True, llm_conf=llm_conf, text_case=conf.get("text_case", default_case))
    return SpeechLLMTask.build_preprocess_fn(args, train=True)


def tokenize(texts: Dict[str, str], preprocess) -> Dict[str, List[int]]:
    return {utt: preprocess(utt, {"text": text})["text"].tolist() for utt, text in texts.items()}


def report(result: Reachability, config: BeamSearchConfig, token_ids: Dict[str, Sequence[int]], texts: Dict[str, str],
           tokenizer, num_examples: int, checked_durations: bool) -> dict:
    """Log the figures and examples; return them as a dict (``--output_json``)."""
    n = result.num_refs
    rules = {k: getattr(config, k) for k in ("no_repeat_ngram_size", "no_loop_ngram_size", "min_new_tokens")}
    logger.info(f"{n} references; constraints {rules}; max_new_tokens {config.max_new_tokens}, "
                f"max_tokens_per_second {config.max_tokens_per_second} + {config.max_tokens_constant}")
    logger.info(f"banned by a decoding constraint: {len(result.banned)} ({result.percent(len(result.banned)):.2f}%)")
    for utt in sorted(result.banned)[:num_examples]:
        ban = result.banned[utt]
        ids = list(token_ids[utt])
        what = "EOS" if ban.position == len(ids) else repr(tokenizer.convert_ids_to_tokens(ids[ban.position]))
        ngram = " ".join(tokenizer.convert_ids_to_tokens(list(ban.ngram))) if ban.ngram else ""
        logger.info(f"  {utt}: token {ban.position} {what} banned by {ban.rule}"
                    + (f" (repeats '{ngram}')" if ngram else "") + f": {texts[utt]!r}")
    over = result.over_max_new_tokens
    logger.info(f"longer than max_new_tokens={config.max_new_tokens} (EOS included): {len(over)} "
                f"({result.percent(len(over)):.2f}%)" + (f"; longest {max(over.values())} tokens" if over else ""))
    for utt in sorted(over, key=over.get, reverse=True)[:num_examples]:
        logger.info(f"  {utt}: {over[utt]} tokens")
    slow = result.over_duration_bound
    if not checked_durations:
        logger.info("duration bound: not checked (needs max_tokens_per_second and --utt2dur or --utt2num_samples)")
    else:
        logger.info(f"longer than the duration bound: {len(slow)} ({result.percent(len(slow)):.2f}%)")
    for utt in sorted(slow)[:num_examples]:
        length, budget, seconds = slow[utt]
        logger.info(f"  {utt}: {length} tokens, bound {budget} for {seconds:.2f} s")
    unreachable = result.unreachable
    reachable = n - len(unreachable)
    logger.info(f"reachable: {reachable} of {n} ({result.percent(reachable):.2f}%)")
    return {"num_refs": n, "reachable": reachable, "reachable_percent": result.percent(reachable),
            "banned": {u: {"position": b.position, "rule": b.rule, "ngram": list(b.ngram)}
                       for u, b in sorted(result.banned.items())},
            "over_max_new_tokens": dict(sorted(over.items())),
            "over_duration_bound": {u: {"tokens": length, "budget": budget, "seconds": seconds}
                                    for u, (length, budget, seconds) in sorted(slow.items())},
            "decode_config": config.to_dict()}


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
    from espnet_speechllm.bin.speechllm_inference import load_decode_config
    from espnet_speechllm.scoring.hallucination import read_durations
    from espnet_speechllm.scoring.text_normalize import read_text

    config = load_decode_config(args.decode_config)
    texts = read_text(args.text)
    if not texts:
        raise UserError(f"{args.text} holds no utterance")
    preprocess = training_tokenizer(args.train_config, args.tokenizer_dir)
    tokenizer = preprocess.tokenizer
    eos_ids = config.eos_ids() or [tokenizer.eos_token_id]
    durations, source = None, None
    if args.utt2num_samples or args.utt2dur:
        source = args.utt2num_samples or args.utt2dur
        durations = read_durations(utt2num_samples=args.utt2num_samples, utt2dur=args.utt2dur)
    logger.info(f"{args.text}: tokenized as in training ({tokenizer.name_or_path}, text_case={preprocess.text_case}); "
                f"decoding config {args.decode_config}")
    token_ids = tokenize(texts, preprocess)
    result = reachability(token_ids, config, eos_ids, durations, source or "")
    summary = report(result, config, token_ids, texts, tokenizer, args.num_examples,
                     durations is not None and config.max_tokens_per_second is not None)
    if args.output_json:
        os.makedirs(os.path.dirname(os.path.abspath(args.output_json)), exist_ok=True)
        with open(args.output_json, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
    unreachable = 100.0 - summary["reachable_percent"]
    if unreachable > args.max_unreachable_percent:
        logger.error(f"{args.text}: {len(result.unreachable)} of {result.num_refs} references ({unreachable:.2f}%) "
                     f"cannot be decoded with {args.decode_config} (allowed: {args.max_unreachable_percent}%)")
        sys.exit(1)


if __name__ == "__main__":
    run_main(main)
