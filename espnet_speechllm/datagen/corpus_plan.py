"""What the synthetic corpus holds (recipe stage 1): its sets and their sizes per preset, and each utterance's
voice, rate, pitch, amplitude and kind (plain, noisy, or with non-speech edges), drawn from the seed."""
import os
import random
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

from espnet_speechllm.datagen import espeak
from espnet_speechllm.utils.cli import UserError

SETS = ["train", "dev", "test_clean", "test_other", "test_nonspeech_edges", "pretrain_encoder"]
PRESETS: Dict[str, Dict[str, int]] = {
    # the smallest corpus every stage can run on: the end-to-end test of CI
    "ci": dict(train=48, dev=8, test_clean=6, test_other=6, test_nonspeech_edges=4,
               pretrain_encoder=32, lm_text=300),
    # a few minutes of audio: for tests and a first look at every stage
    "debug": dict(train=200, dev=24, test_clean=24, test_other=24, test_nonspeech_edges=16,
                  pretrain_encoder=200, lm_text=2000),
    # the recipe default: about 3 h of speech, built in a few minutes on 2 cores
    "default": dict(train=3000, dev=200, test_clean=200, test_other=200, test_nonspeech_edges=120,
                    pretrain_encoder=3000, lm_text=30000),
}
SET_TAGS = {"train": "tr", "dev": "dv", "test_clean": "tc", "test_other": "to", "test_nonspeech_edges": "te",
            "pretrain_encoder": "pe"}
NOISY_FRACTION = 0.5


@dataclass
class Utt:
    utt_id: str
    text: str
    voice: espeak.Voice
    rate: int
    pitch: int
    amplitude: int
    path: str
    kind: str = "plain"  # plain | noisy | edges
    seed: str = ""
    info: Dict = field(default_factory=dict)


def set_sizes(preset: str, overrides: Mapping[str, Optional[int]]) -> Dict[str, int]:
    """The preset's sizes (sets and ``lm_text``), each replaced by its override unless that is None."""
    sizes = dict(PRESETS[preset])
    for name, value in overrides.items():
        if value is not None:
            sizes[name] = value
    for name, n in sizes.items():
        if n < 1:
            raise UserError(f"--num_{name} must be >= 1, got {n}")
    return sizes


def _speaker_params(voice: espeak.Voice, seed: int):
    """A speaker's own base rate and pitch (deterministic)."""
    r = random.Random(f"{seed}:speaker:{voice.spec}")
    lo, hi = espeak.SEEN_RATE_RANGE
    return r.randint(lo + 10, hi - 10), r.randint(espeak.PITCH_RANGE[0] + 10, espeak.PITCH_RANGE[1] - 10)


def plan_set(name: str, texts: List[str], voices: List[espeak.Voice], seed: int, audio_dir: str) -> List[Utt]:
    """Assigns voice, rate, pitch, amplitude and kind to each sentence of a set."""
    r = random.Random(f"{seed}:plan:{name}")
    order = voices[:]
    r.shuffle(order)
    utts = []
    for i, text in enumerate(texts):
        voice = order[i % len(order)]
        base_rate, base_pitch = _speaker_params(voice, seed)
        if name == "test_other":
            lo, hi = r.choice(espeak.OTHER_RATE_RANGES)
            rate = r.randint(lo, hi)
            pitch = r.randint(*espeak.PITCH_RANGE)
            kind = "noisy" if r.random() < NOISY_FRACTION else "plain"
        else:
            lo, hi = espeak.SEEN_RATE_RANGE
            rate = min(hi, max(lo, base_rate + r.randint(-10, 10)))
            pitch = min(espeak.PITCH_RANGE[1], max(espeak.PITCH_RANGE[0], base_pitch + r.randint(-5, 5)))
            kind = "edges" if name == "test_nonspeech_edges" else "plain"
        utt_id = f"{voice.speaker_id}-{SET_TAGS[name]}{i:05d}"
        path = os.path.join(audio_dir, name, voice.speaker_id, f"{utt_id}.wav")
        utts.append(Utt(utt_id, text, voice, rate, pitch, r.randint(70, 130), path, kind, f"{seed}:{name}:{i}"))
    return utts
