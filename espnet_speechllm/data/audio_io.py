"""Reading the three kinds of ``wav.scp`` entries and mixing noise at a given SNR.

Entries: a plain audio path (wav/flac/...), a kaldiio ``x.ark:offset``, or a shell pipe ``cmd |`` whose
stdout is a wav stream (run with ``bash -o pipefail``).
"""
import io
import logging
import os
import re
import struct
import subprocess
from typing import Optional, Tuple

import numpy as np
import soundfile as sf

from espnet_speechllm.utils.cli import UserError

logger = logging.getLogger(__name__)

_ARK_RE = re.compile(r"^(.+\.ark):(\d+)(\[.*\])?$")


class AudioReadError(UserError):
    """An entry could not be read; ``reason`` is a short tag (``missing_file`` or ``unreadable``)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def entry_kind(entry: str) -> str:
    entry = entry.strip()
    if entry.endswith("|"):
        return "pipe"
    if _ARK_RE.match(entry):
        return "ark"
    return "file"


def wav_truncation(path: str) -> Optional[str]:
    """For a RIFF/WAVE file whose data chunk is shorter than its header says (a truncated copy or download),
    "header says X s, file holds Y s"; None for a complete file, another format, or a streamed wav whose
    header leaves the length open (0 or 0xFFFFFFFF)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        size = os.fstat(f.fileno()).st_size
        pos, byte_rate = 12, 0
        while pos + 8 <= size:
            f.seek(pos)
            cid, clen = struct.unpack("<4sI", f.read(8))
            if cid == b"fmt ":
                fmt = f.read(min(clen, 16))
                if len(fmt) >= 12:
                    byte_rate = struct.unpack("<I", fmt[8:12])[0]
            elif cid == b"data":
                avail = size - pos - 8
                if clen in (0, 0xFFFFFFFF) or clen <= avail or not byte_rate:
                    return None
                return f"header says {clen / byte_rate:.2f} s, file holds {avail / byte_rate:.2f} s"
            pos += 8 + clen + (clen & 1)
    return None


def read_audio(entry: str, dtype: str = "int16") -> Tuple[np.ndarray, int]:
    """Returns (samples, sampling rate); samples are (T,) or (T, C). Raises AudioReadError."""
    entry = entry.strip()
    kind = entry_kind(entry)
    if kind == "pipe":
        cmd = entry[:-1].rstrip()
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        if proc.returncode != 0 or not proc.stdout:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise AudioReadError("unreadable", f"command failed (code {proc.returncode}): {cmd}"
                                 + (f": {err[-1]}" if err else ""))
        try:
            samples, rate = sf.read(io.BytesIO(proc.stdout), dtype=dtype)
        except Exception as e:  # soundfile raises several types for broken streams
            raise AudioReadError("unreadable", f"output of '{cmd}' is not audio: {e}") from None
        return samples, rate
    if kind == "ark":
        path = _ARK_RE.match(entry).group(1)
        if not os.path.isfile(path):
            raise AudioReadError("missing_file", f"no such file: {path}")
        import kaldiio

        try:
            rate, samples = kaldiio.load_mat(entry)
        except Exception as e:
            raise AudioReadError("unreadable", f"cannot read {entry}: {e}") from None
        samples = np.asarray(samples)
        if dtype == "int16" and samples.dtype != np.int16:
            samples = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)
        elif dtype != "int16":
            samples = samples.astype(dtype) / (32768.0 if samples.dtype == np.int16 else 1.0)
        return samples, int(rate)
    if not os.path.isfile(entry):
        raise AudioReadError("missing_file", f"no such file: {entry}")
    try:
        samples, rate = sf.read(entry, dtype=dtype)
    except Exception as e:
        raise AudioReadError("unreadable", f"cannot read {entry}: {e}") from None
    return samples, rate


def write_wav(path: str, samples: np.ndarray, rate: int = 16000) -> None:
    """Writes 16-bit PCM; float input is taken in [-1, 1]."""
    if samples.dtype != np.int16:
        samples = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    sf.write(path, samples, rate, subtype="PCM_16")


def to_float(samples: np.ndarray) -> np.ndarray:
    if samples.dtype == np.int16:
        return samples.astype(np.float64) / 32768.0
    return samples.astype(np.float64)


def power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x))) if x.size else 0.0


def fit_length(noise: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """Noise cut at a random offset when longer than ``length``, repeated when shorter."""
    if noise.size == 0:
        raise UserError("empty noise signal")
    if noise.shape[0] >= length:
        start = int(rng.integers(0, noise.shape[0] - length + 1))
        return noise[start:start + length]
    reps = int(np.ceil(length / noise.shape[0]))
    start = int(rng.integers(0, noise.shape[0]))
    return np.tile(noise, reps + 1)[start:start + length]


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator
               ) -> Tuple[np.ndarray, bool]:
    """speech + noise scaled so that 10*log10(P_speech / P_noise) = snr_db (powers over the whole
    utterance). Inputs are float in [-1, 1]; returns (mixture, rescaled) where rescaled tells that the
    mixture was scaled down to avoid clipping."""
    noise = fit_length(noise, speech.shape[0], rng)
    p_speech, p_noise = power(speech), power(noise)
    if p_noise <= 0.0:
        raise UserError("noise signal is digital silence")
    if p_speech <= 0.0:
        return speech.copy(), False
    gain = np.sqrt(p_speech / (p_noise * 10.0 ** (snr_db / 10.0)))
    mix = speech + gain * noise
    peak = float(np.max(np.abs(mix)))
    if peak > 0.99:
        return mix * (0.99 / peak), True
    return mix, False
