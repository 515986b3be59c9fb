"""Non-speech splits synthesized with sox (datagen/nonspeech.py): noises, tones, chords, sweeps, hum, noise+tone
and time-reversed speech for train and test, which reverse different utterances; stationary noises for the bank."""
import logging
import os
import random
import shutil
from typing import Dict, List, Tuple

from espnet_speechllm.data.kaldi_dir import read_kaldi_file
from espnet_speechllm.datagen import nonspeech
from espnet_speechllm.datagen.nonspeech import SPLITS
from espnet_speechllm.datagen.progress import run_pool
from espnet_speechllm.utils.cli import UserError

logger = logging.getLogger(__name__)


def sox_splits(audio_dir: str, speech_scp: str, num_train: int, num_test: int, num_bank: int, min_seconds: float,
               max_seconds: float, nj: int, seed: int) -> Dict[str, Dict[str, Tuple[str, str]]]:
    """{split: {utt: (wav path under ``audio_dir``, kind)}}; no ``speech_scp``: no reversed speech."""
    if not 0 < min_seconds <= max_seconds:
        raise UserError("need 0 < --min_seconds <= --max_seconds")
    speech: List[str] = []
    if speech_scp:
        speech = [v for _, v in sorted(read_kaldi_file(speech_scp).items())]
        if len(speech) < 2:
            raise UserError(f"{speech_scp}: need at least 2 utterances to reverse")
    half = len(speech) // 2  # train reverses the first half, test the second
    sources = {"train": speech[:half], "test": speech[half:], "bank": []}
    sizes = {"train": num_train, "test": num_test, "bank": num_bank}
    bank_kinds = nonspeech.NOISE_KINDS + ("hum", "noise_tone")
    audio_dir = os.path.abspath(audio_dir)
    jobs = []
    for split in SPLITS:
        rng = random.Random(f"{seed}:sox:{split}")
        for i in range(sizes[split]):
            if split == "bank":
                kind = rng.choice(bank_kinds)
            else:
                kind = nonspeech.random_kind(rng, with_speech=bool(sources[split]))
            utt = f"ns{split}-{kind.replace('_', '')}-{i:05d}"
            src = rng.choice(sources[split]) if kind == "reversed_speech" else None
            dur = round(rng.uniform(min_seconds, max_seconds), 2)
            jobs.append((split, utt, kind, dur, src, os.path.join(audio_dir, split, f"{utt}.wav"),
                         f"{seed}:sox:{utt}"))

    def run(job):
        split, utt, kind, dur, src, path, job_seed = job
        nonspeech.make_nonspeech(path, kind, dur, random.Random(job_seed), speech_entry=src)

    for split in SPLITS:
        shutil.rmtree(os.path.join(audio_dir, split), ignore_errors=True)
    for _ in run_pool(run, jobs, nj, "sox non-speech", logger, threads=True):
        pass
    out: Dict[str, Dict[str, Tuple[str, str]]] = {s: {} for s in SPLITS}
    for split, utt, kind, _, _, path, _ in jobs:
        out[split][utt] = (path, kind)
    return out
