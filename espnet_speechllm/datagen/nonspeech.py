"""Non-speech audio synthesized with sox: noises, tones, chords, sweeps, hum, time-reversed speech and
mixtures of them, with random durations and levels (16 kHz mono 16-bit wav).

Each sound is normalized to a random peak level (``gain -n``) and faded in and out. All randomness
comes from the ``random.Random`` passed in, so a seed reproduces the same sounds.
"""
import logging
import os
import random
import shlex
import subprocess
from dataclasses import dataclass
from typing import List, Optional, Sequence

from espnet_speechllm.data.audio_io import entry_kind
from espnet_speechllm.utils.cli import UserError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
NOISE_KINDS = ("white", "pink", "brown")
KINDS = NOISE_KINDS + ("tone", "chord", "sweep", "hum", "noise_tone", "reversed_speech")
# peak level range in dBFS
LEVEL_RANGE = (-35.0, -3.0)
# the splits of a non-speech corpus (datagen/nonspeech_corpus.py), each {utt: (wav.scp entry, category)}
SPLITS = ("train", "test", "bank")


@dataclass
class NonSpeech:
    kind: str
    duration: float  # seconds (for reversed_speech: of the source utterance, at most the asked duration)
    level_db: float  # peak level in dBFS
    sox_args: List[str]


def _sox_out(path: str) -> List[str]:
    return ["-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", path]


def _fade(duration: float) -> List[str]:
    f = round(min(0.1, duration / 4), 3)
    return ["fade", "q", str(f), str(round(duration, 3)), str(f)]


def _generators(kind: str, rng: random.Random) -> List[str]:
    """The sox ``synth`` generator arguments for one kind."""
    if kind in NOISE_KINDS:
        return [f"{kind}noise"]
    if kind == "tone":
        return [rng.choice(["sine", "triangle", "square"]), str(rng.randint(150, 3000))]
    if kind == "chord":
        root = rng.uniform(110, 660)
        ratios = rng.choice([(1, 5 / 4, 3 / 2), (1, 6 / 5, 3 / 2), (1, 5 / 4, 3 / 2, 2), (1, 4 / 3, 5 / 3)])
        gens: List[str] = []
        for r in ratios:
            gens += ["sine", str(round(root * r, 1))]
        return gens
    if kind == "sweep":
        lo, hi = sorted(rng.sample(range(100, 4000), 2))
        return ["sine", f"{lo}-{hi}" if rng.random() < 0.5 else f"{hi}-{lo}"]
    if kind == "hum":
        base = rng.choice([50, 60])
        return ["sine", str(base), "sine", str(2 * base), "sine", str(3 * base)]
    if kind == "noise_tone":
        return [f"{rng.choice(NOISE_KINDS)}noise", "sine", str(rng.randint(200, 2000))]
    raise UserError(f"unknown non-speech kind {kind!r}; choose from {KINDS}")


def make_nonspeech(out_path: str, kind: str, duration: float, rng: random.Random,
                   speech_entry: Optional[str] = None, level_db: Optional[float] = None) -> NonSpeech:
    """Writes one non-speech sound to ``out_path``.

    ``reversed_speech`` needs ``speech_entry`` (a wav.scp entry: file or ``cmd |``), played backwards
    (sox ``reverse``) and cut to ``duration``. Raises RuntimeError when sox fails.
    """
    if duration <= 0:
        raise UserError(f"duration must be > 0, got {duration}")
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    if level_db is None:
        level_db = round(rng.uniform(*LEVEL_RANGE), 1)
    post = ["gain", "-n", str(level_db)]
    if kind == "reversed_speech":
        if not speech_entry:
            raise UserError("reversed_speech needs a speech_entry")
        post = ["reverse", "trim", "0", str(round(duration, 3))] + post
        if entry_kind(speech_entry) == "pipe":
            src = speech_entry.strip()[:-1].rstrip() + " | sox -V1 -t wav - "
        elif entry_kind(speech_entry) == "file":
            src = "sox -V1 " + shlex.quote(speech_entry.strip()) + " "
        else:
            raise UserError(f"reversed_speech needs a file or pipe entry, got {speech_entry!r}")
        cmd = src + " ".join(shlex.quote(a) for a in _sox_out(out_path) + post)
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True)
        args = ["bash", "-c", cmd]
    else:
        args = ["sox", "-V1", "-r", str(SAMPLE_RATE), "-n"] + _sox_out(out_path)
        args += ["synth", str(round(duration, 3))] + _generators(kind, rng)
        if kind in ("tone", "chord") and rng.random() < 0.5:
            args += ["tremolo", str(round(rng.uniform(2, 8), 1)), str(rng.randint(20, 60))]
        args += _fade(duration) + post
        proc = subprocess.run(args, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"sox failed (code {proc.returncode}) making {kind} -> {out_path}: "
                           f"{proc.stderr.decode('utf-8', 'replace').strip()}")
    return NonSpeech(kind=kind, duration=duration, level_db=level_db, sox_args=args)


def random_kind(rng: random.Random, kinds: Sequence[str] = KINDS, with_speech: bool = True) -> str:
    choices = [k for k in kinds if with_speech or k != "reversed_speech"]
    return rng.choice(choices)
