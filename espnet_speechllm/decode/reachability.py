"""Can a decoding config produce the references of a set at all? Each tokenized reference (followed by EOS) is
checked against the decoding constraints, which may ban one of its tokens or its EOS, and the token budgets
(``max_new_tokens``; with durations, the ``max_tokens_per_second`` bound). Stage 11 runs it before decoding.
"""
import argparse
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import yaml

from espnet_speechllm.decode.config import BeamSearchConfig
from espnet_speechllm.decode.constraints import Ban, SearchConstraints
from espnet_speechllm.scoring.hallucination import read_durations
from espnet_speechllm.scoring.text_normalize import read_text
from espnet_speechllm.utils.cli import UserError

logger = logging.getLogger(__name__)


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


def check_references(config: BeamSearchConfig, decode_config: str, text: str, train_config: str,
                     tokenizer_dir: Optional[str] = None, utt2num_samples: Optional[str] = None,
                     utt2dur: Optional[str] = None, num_examples: int = 5, output_json: Optional[str] = None,
                     max_unreachable_percent: float = 0.1) -> bool:
    """Check the references of the Kaldi ``text`` against ``config`` (loaded from ``decode_config``), tokenized as
    ``train_config`` trains; log the figures (and write them to ``output_json``). False, with an error logged,
    when more than ``max_unreachable_percent`` of the references are unreachable."""
    texts = read_text(text)
    if not texts:
        raise UserError(f"{text} holds no utterance")
    preprocess = training_tokenizer(train_config, tokenizer_dir)
    tokenizer = preprocess.tokenizer
    eos_ids = config.eos_ids() or [tokenizer.eos_token_id]
    durations, source = None, None
    if utt2num_samples or utt2dur:
        source = utt2num_samples or utt2dur
        durations = read_durations(utt2num_samples=utt2num_samples, utt2dur=utt2dur)
    logger.info(f"{text}: tokenized as in training ({tokenizer.name_or_path}, text_case={preprocess.text_case}); "
                f"decoding config {decode_config}")
    token_ids = tokenize(texts, preprocess)
    result = reachability(token_ids, config, eos_ids, durations, source or "")
    summary = report(result, config, token_ids, texts, tokenizer, num_examples,
                     durations is not None and config.max_tokens_per_second is not None)
    if output_json:
        os.makedirs(os.path.dirname(os.path.abspath(output_json)), exist_ok=True)
        with open(output_json, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
    unreachable = 100.0 - summary["reachable_percent"]
    if unreachable > max_unreachable_percent:
        logger.error(f"{text}: {len(result.unreachable)} of {result.num_refs} references ({unreachable:.2f}%) "
                     f"cannot be decoded with {decode_config} (allowed: {max_unreachable_percent}%)")
        return False
    return True
