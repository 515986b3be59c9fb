"""The ``audio`` data type: wav.scp entries read as 16 kHz mono float32 with errors that name the utterance.

ESPnet's ``sound`` type fails inside soundfile with a traceback that names neither the utterance nor the
audio file. This loader accepts the three entry kinds a recipe produces -- a plain wav/flac path, a kaldiio
``file.ark:offset`` (stage 6 dumps) and a Kaldi ``command |`` pipe (speed perturbation) -- and raises a
``ValueError`` naming utterance, entry and the fix.
"""
import collections.abc
import logging
from typing import Iterator

import numpy as np
from espnet2.train import dataset as espnet_dataset

from espnet_speechllm.data.audio_io import AudioReadError, read_audio
from espnet_speechllm.data.kaldi_dir import read_kaldi_file
from espnet_speechllm.utils.cli import UserError

logger = logging.getLogger(__name__)


SAMPLE_RATE = 16000


def load_audio(utt_id: str, entry: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Load one utterance as a 1-D float32 array, or raise ValueError naming it."""
    try:
        samples, rate = read_audio(entry, dtype="float32")
    except AudioReadError as e:
        raise UserError(
            f"utterance {utt_id!r}: cannot read audio {entry!r} ({e}). "
            "Check the wav.scp entry, or rerun stage 6 which drops unreadable utterances."
        ) from e
    if rate != sample_rate:
        raise UserError(
            f"utterance {utt_id!r}: {entry!r} has sample rate {rate} Hz, expected {sample_rate} Hz. "
            f"Resample it (e.g. sox in.wav -r {sample_rate} out.wav) or rerun data preparation."
        )
    if samples.ndim != 1:
        raise UserError(
            f"utterance {utt_id!r}: {entry!r} has {samples.shape[1]} channels, expected mono. "
            "Downmix it (e.g. sox in.wav -c 1 out.wav)."
        )
    if samples.size == 0:
        raise UserError(f"utterance {utt_id!r}: {entry!r} holds no samples")
    return samples


class AudioScpReader(collections.abc.Mapping):
    """Lazy ``utt_id -> np.ndarray`` mapping over a wav.scp, for ESPnet's dataset."""

    def __init__(self, path: str, sample_rate: int = SAMPLE_RATE):
        self.path = path
        self.sample_rate = sample_rate
        self.entries = read_kaldi_file(path)

    def __getitem__(self, utt_id: str) -> np.ndarray:
        return load_audio(utt_id, self.entries[utt_id], self.sample_rate)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def _audio_loader(path, float_dtype=None):
    return AudioScpReader(path)


def register_audio_type() -> None:
    """Add ``audio`` to ESPnet's data-type registry (``--*_data_path_and_name_and_type x/wav.scp,speech,audio``)."""
    espnet_dataset.DATA_TYPES.setdefault(
        "audio",
        dict(
            func=_audio_loader,
            kwargs=["float_dtype"],
            help="16 kHz mono audio: wav/flac path, kaldiio 'x.ark:offset' or 'command |' per line; "
            "errors name the utterance.",
        ),
    )
