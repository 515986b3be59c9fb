"""Speech synthesis with espeak-ng: 16 kHz mono 16-bit wav (espeak-ng writes 22.05 kHz; sox resamples).

A voice is an espeak-ng language voice plus a variant, ``en-gb-x-rp+f2``; its speaker id is
``engbxrp_f2``. Rate (``-s``, words per minute), pitch (``-p``, 0-99) and amplitude (``-a``) are set per
utterance.
"""
import functools
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Iterable, List, Sequence

from espnet_speechllm.datagen.progress import run_pool
from espnet_speechllm.utils.cli import UserError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000

# English language voices of espeak-ng (checked with `espeak-ng --voices=en`) and variants of the
# !v directory. The "seen" ones make the training speakers, the "unseen" ones the test_other speakers.
SEEN_LANGUAGES = ["en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland"]
SEEN_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3"]
UNSEEN_LANGUAGES = ["en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
UNSEEN_VARIANTS = ["m6", "m7", "f4", "f5", "klatt", "klatt3", "whisper"]
# Speaking rate (words per minute) and pitch of the seen speakers; test_other uses rates outside.
SEEN_RATE_RANGE = (140, 195)
OTHER_RATE_RANGES = ((100, 130), (205, 240))
PITCH_RANGE = (25, 75)


@dataclass(frozen=True)
class Voice:
    language: str
    variant: str = ""

    @property
    def spec(self) -> str:
        """The espeak-ng -v argument."""
        return f"{self.language}+{self.variant}" if self.variant else self.language

    @property
    def speaker_id(self) -> str:
        return self.language.replace("-", "") + (f"_{self.variant}" if self.variant else "")


def voices(languages: Sequence[str], variants: Sequence[str]) -> List[Voice]:
    return [Voice(lang, var) for lang in languages for var in variants]


def check_tools() -> None:
    """Raises RuntimeError naming the missing program and how to get it."""
    for prog, pkg in [("espeak-ng", "espeak-ng"), ("sox", "sox")]:
        if shutil.which(prog) is None:
            raise UserError(f"{prog} not found on PATH; install it (Debian/Ubuntu: apt-get install {pkg})")


@functools.lru_cache(maxsize=None)
def _espeak_data_dir() -> str:
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    # "eSpeak NG text-to-speech: 1.51  Data at: /usr/lib/x86_64-linux-gnu/espeak-ng-data"
    return out.split("Data at:")[-1].strip() if "Data at:" in out else ""


def available_variants() -> List[str]:
    """Variant names installed with espeak-ng (the voices/!v directory)."""
    data = _espeak_data_dir()
    vdir = os.path.join(data, "voices", "!v")
    return sorted(os.listdir(vdir)) if os.path.isdir(vdir) else []


def available_languages() -> List[str]:
    out = subprocess.run(["espeak-ng", "--voices=en"], capture_output=True, text=True, check=True).stdout
    langs = []
    for line in out.splitlines()[1:]:
        fields = line.split()
        # Pty Language Age/Gender VoiceName File ...; mbrola voices (mb/...) need extra packages
        if len(fields) >= 5 and fields[1] != "variant" and not fields[4].startswith("mb/"):
            langs.append(fields[1])
    return sorted(set(langs))


def check_voices(vs: Iterable[Voice]) -> None:
    """Raises ValueError naming voices whose language or variant espeak-ng does not have."""
    langs, variants = set(available_languages()), set(available_variants())
    bad = sorted({v.spec for v in vs if v.language not in langs or (v.variant and v.variant not in variants)})
    if bad:
        raise UserError(f"espeak-ng lacks the voices {bad}; installed English languages: {sorted(langs)}; "
                        f"variants: see `ls {_espeak_data_dir()}/voices/!v`")


def synthesize(text: str, out_path: str, voice: Voice, rate: int = 175, pitch: int = 50,
               amplitude: int = 100) -> None:
    """Speaks ``text`` into ``out_path`` (16 kHz, mono, 16-bit wav). Raises RuntimeError on failure."""
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    espeak = ["espeak-ng", "-v", voice.spec, "-s", str(int(rate)), "-p", str(int(pitch)), "-a", str(int(amplitude)),
              "--stdout", text.lower()]
    sox = ["sox", "-V1", "-t", "wav", "-", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", out_path]
    p1 = subprocess.Popen(espeak, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p2 = subprocess.run(sox, stdin=p1.stdout, capture_output=True)
    p1.stdout.close()
    err1 = p1.stderr.read().decode("utf-8", "replace").strip()
    p1.stderr.close()
    rc1 = p1.wait()
    if rc1 != 0 or p2.returncode != 0:
        raise RuntimeError(f"synthesis failed for voice {voice.spec} text {text!r} -> {out_path}: "
                           f"espeak-ng code {rc1} {err1!r}; sox code {p2.returncode} "
                           f"{p2.stderr.decode('utf-8', 'replace').strip()!r}")


@dataclass
class SynthJob:
    text: str
    out_path: str
    voice: Voice
    rate: int = 175
    pitch: int = 50
    amplitude: int = 100


def synthesize_many(jobs: Sequence[SynthJob], nj: int = 2, desc: str = "espeak-ng") -> None:
    """Runs the jobs on ``nj`` threads (each runs espeak-ng and sox processes) with progress."""

    def run(job: SynthJob) -> None:
        synthesize(job.text, job.out_path, job.voice, job.rate, job.pitch, job.amplitude)

    for _ in run_pool(run, jobs, nj, desc, threads=True):
        pass
