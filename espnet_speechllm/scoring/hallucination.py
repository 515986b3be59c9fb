"""Insertion ("hallucination") metrics for non-speech test sets (paper Sec. 3.3 and its MUSAN results).

On audio without speech every hypothesis word is an insertion, and a WER per reference word does not
exist (Wrd = 0). What is comparable across systems and sets is how often the model says anything and how
much it says per minute of audio:

- ``nonempty_hyp_percent``: share of utterances whose normalized hypothesis is not empty;
- ``inserted_words_per_min`` / ``inserted_chars_per_min``: inserted words / their characters (spaces not
  counted) per minute of audio;
- ``audio_minutes``: the total duration they are divided by.

Utterances with an empty reference contribute all their hypothesis words. A set marked non-speech may still
hold a few non-empty references; their inserted words come from a minimum-edit-distance alignment (jiwer).
"""

import logging
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Union

import jiwer

from espnet_speechllm.data.kaldi_dir import read_numbers
from espnet_speechllm.utils.cli import UserError

logger = logging.getLogger(__name__)


def read_durations(
    utt2num_samples: Optional[Union[str, Path]] = None,
    utt2dur: Optional[Union[str, Path]] = None,
    sample_rate: int = 16000,
) -> Dict[str, float]:
    """Return ``{utt_id: seconds}`` from ``utt2num_samples`` (divided by ``sample_rate``) or ``utt2dur``."""
    if (utt2num_samples is None) == (utt2dur is None):
        raise UserError("give exactly one of utt2num_samples and utt2dur")
    if utt2num_samples is not None:
        if sample_rate <= 0:
            raise UserError(f"sample_rate must be positive, got {sample_rate}")
        samples = read_numbers(utt2num_samples, int)
        return {k: v / sample_rate for k, v in samples.items()}
    return read_numbers(utt2dur, float)


def inserted_words(ref: str, hyp: str) -> List[str]:
    """Hypothesis words that an alignment of ``hyp`` to ``ref`` marks as insertions (inputs normalized)."""
    hyp_words = hyp.split()
    if not ref.split():
        return hyp_words
    if not hyp_words:
        return []
    out = jiwer.process_words(ref, hyp)
    return [
        w
        for chunk in out.alignments[0]
        if chunk.type == "insert"
        for w in hyp_words[chunk.hyp_start_idx : chunk.hyp_end_idx]
    ]


def hallucination_stats(
    refs: Mapping[str, str],
    hyps: Mapping[str, str],
    durations: Mapping[str, float],
    max_examples: int = 10,
) -> dict:
    """Compute the metrics of the module docstring over the utterances of ``refs`` (texts normalized).

    ``hyps`` and ``durations`` must cover every utterance of ``refs``; a missing one is a ``ValueError``.
    ``examples`` lists up to ``max_examples`` non-empty hypotheses, longest first, for reading the errors.
    """
    missing = [u for u in refs if u not in durations]
    if missing:
        raise UserError(
            f"no duration for {len(missing)} of {len(refs)} utterances, e.g. {missing[:5]}; "
            "the duration file must come from the same data directory as the reference text"
        )
    n_nonempty = n_words = n_chars = 0
    seconds = 0.0
    nonempty = []
    for utt_id, ref in refs.items():
        hyp = hyps[utt_id]
        seconds += durations[utt_id]
        if hyp.split():
            n_nonempty += 1
            nonempty.append((utt_id, hyp))
        words = inserted_words(ref, hyp)
        n_words += len(words)
        n_chars += sum(len(w) for w in words)
    minutes = seconds / 60.0
    num_utts = len(refs)
    nonempty.sort(key=lambda x: (-len(x[1].split()), x[0]))
    stats = {
        "num_utts": num_utts,
        "num_empty_refs": sum(1 for r in refs.values() if not r.split()),
        "num_nonempty_hyp": n_nonempty,
        "nonempty_hyp_percent": 100.0 * n_nonempty / num_utts if num_utts else None,
        "inserted_words": n_words,
        "inserted_chars": n_chars,
        "audio_minutes": minutes,
        "inserted_words_per_min": n_words / minutes if minutes > 0 else None,
        "inserted_chars_per_min": n_chars / minutes if minutes > 0 else None,
        "examples": [{"utt_id": u, "hyp": h} for u, h in nonempty[:max_examples]],
    }
    logger.info(
        "hallucination: %d/%d utterances with output, %d inserted words in %.2f min",
        n_nonempty,
        num_utts,
        n_words,
        minutes,
    )
    return stats
