"""Non-speech splits from the MUSAN corpus (musan/{noise,music}/<source>/*.wav; speech/ is never used): files are
split into test and train by file, per category, then cut into chunks as sox pipe entries (no audio is copied);
the noise bank is chunks of the train files of the bank categories, so it shares no audio with the test split."""
import collections
import glob
import logging
import os
import random
import shlex
from typing import Dict, List, Tuple

import soundfile as sf

from espnet_speechllm.datagen.nonspeech import SAMPLE_RATE, SPLITS
from espnet_speechllm.utils.cli import MissingInputError, UserError

logger = logging.getLogger(__name__)

MUSAN_CATEGORIES = ("noise", "music")


def find_musan(musan_dir: str, categories: List[str]) -> str:
    if not musan_dir:
        raise UserError("--musan_dir is empty: set MUSAN in db.sh to the MUSAN directory (the one with noise/ and "
                        "music/; https://www.openslr.org/17), or use the sox-synthesized non-speech (--source sox)")
    for cand in (musan_dir, os.path.join(musan_dir, "musan")):
        if all(os.path.isdir(os.path.join(cand, c)) for c in categories):
            return cand
    raise MissingInputError(f"MUSAN not found at {musan_dir}: expected {musan_dir}/{{{','.join(categories)}}}/<source>/"
                            "*.wav (or the same under musan/); download it from https://www.openslr.org/17")


def musan_files(root: str, category: str) -> List[Tuple[str, object]]:
    """(path, soundfile info) of the readable .wav files of a MUSAN category."""
    files = sorted(glob.glob(os.path.join(root, category, "**", "*.wav"), recursive=True))
    out, bad = [], 0
    for path in files:
        try:
            out.append((path, sf.info(path)))
        except Exception as e:  # unreadable header
            bad += 1
            logger.warning("skipping unreadable %s: %s", path, e)
    if bad:
        logger.warning("%s/%s: %d unreadable files skipped", root, category, bad)
    if not out:
        raise MissingInputError(f"no readable .wav files under {root}/{category}/")
    return out


def chunk_entries(path: str, info, rng: random.Random, min_s: float, max_s: float, stats) -> List[Tuple[str, str]]:
    """(chunk id suffix, sox pipe entry) for one file."""
    total = info.frames / info.samplerate
    convert = []
    if info.channels > 1:
        convert += ["remix", "-"]
        stats["downmixed"] += 1
    if info.samplerate != SAMPLE_RATE:
        convert += ["rate", str(SAMPLE_RATE)]
        stats["resampled"] += 1
    chunks, start = [], 0.0
    if total < min_s:
        if total < 0.5:
            stats["too_short"] += 1
            return []
        spans = [(0.0, total)]
    else:
        spans = []
        while total - start >= min_s:
            length = min(rng.uniform(min_s, max_s), total - start)
            spans.append((start, length))
            start += length
    for i, (s, d) in enumerate(spans):
        cmd = ["sox", "-V1", path, "-t", "wav", "-", "trim", f"{s:.3f}", f"{d:.3f}"] + convert
        chunks.append((f"{i:04d}", " ".join(shlex.quote(c) for c in cmd) + " |"))
    return chunks


def musan_splits(musan_dir: str, categories: str, bank_categories: str, test_ratio: float,
                 min_chunk_seconds: float, max_chunk_seconds: float, max_train_utts: int, max_test_utts: int,
                 max_bank_utts: int, seed: int) -> Dict[str, Dict[str, Tuple[str, str]]]:
    """{split: {utt: (entry, category)}}; categories are space-separated, a cap of 0 is no cap."""
    categories = categories.split()
    bank_categories = bank_categories.split()
    for c in set(categories) | set(bank_categories):
        if c not in MUSAN_CATEGORIES:
            raise UserError(f"unknown MUSAN category {c!r}: use {MUSAN_CATEGORIES} (speech/ is never non-speech)")
    if not 0 < min_chunk_seconds <= max_chunk_seconds:
        raise UserError("need 0 < --min_chunk_seconds <= --max_chunk_seconds")
    root = find_musan(musan_dir, sorted(set(categories) | set(bank_categories)))
    out: Dict[str, Dict[str, Tuple[str, str]]] = {s: {} for s in SPLITS}
    stats = collections.Counter()
    for cat in sorted(set(categories) | set(bank_categories)):
        files = musan_files(root, cat)
        rng = random.Random(f"{seed}:split:{cat}")
        order = files[:]
        rng.shuffle(order)
        n_test = max(1, round(test_ratio * len(order))) if len(order) > 1 and test_ratio > 0 else 0
        for k, (path, info) in enumerate(order):
            stem = os.path.splitext(os.path.basename(path))[0]
            chunks = chunk_entries(path, info, random.Random(f"{seed}:chunk:{path}"), min_chunk_seconds,
                                   max_chunk_seconds, stats)
            is_test = k < n_test
            for suffix, entry in chunks:
                utt = f"{stem}-{suffix}"
                if is_test:
                    if cat in categories:
                        out["test"][utt] = (entry, cat)
                else:
                    if cat in categories:
                        out["train"][utt] = (entry, cat)
                    if cat in bank_categories:
                        out["bank"][utt] = (entry, cat)
        logger.info("%s/%s: %d files (%d for test)", root, cat, len(files), n_test)
    for what, n in sorted(stats.items()):
        logger.info("%d files %s", n, {"downmixed": "are multi-channel: mixed down to mono",
                                      "resampled": f"are not {SAMPLE_RATE} Hz: resampled by sox",
                                      "too_short": "are shorter than 0.5 s: skipped"}[what])
    for split, cap in (("train", max_train_utts), ("test", max_test_utts), ("bank", max_bank_utts)):
        if cap and len(out[split]) > cap:
            keep = random.Random(f"{seed}:cap:{split}").sample(sorted(out[split]), cap)
            out[split] = {u: out[split][u] for u in sorted(keep)}
    return out
