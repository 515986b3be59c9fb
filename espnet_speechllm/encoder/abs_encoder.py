"""Speech encoder interface (as ESPnet's ``AbsEncoder`` and icefall's ``EncoderInterface``): what the model and the
tools need of an encoder, so that an encoder is declared by its class, not probed for attributes."""
from abc import ABC, abstractmethod
from typing import Optional, Set, Tuple

import torch


class AbsEncoder(torch.nn.Module, ABC):
    """(B, S) waveforms -- or (B, T, D) features for a precomputed encoder -- and their lengths -> (B, T, D) frames
    and frame lengths."""

    @abstractmethod
    def output_size(self) -> int:
        """D, the width of the frames (the adapter's input size)."""

    @abstractmethod
    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def audio_input(self) -> "AbsEncoder":
        """The encoder to run on audio (decoding, plots): itself, unless it was trained on dumped features."""
        return self

    def min_input_samples(self) -> int:
        """The fewest input samples the encoder can take (decoding pads shorter audio up to it)."""
        return 1

    def base_model_dir(self) -> Optional[str]:
        """The model dir whose frozen weights a checkpoint leaves out and relies on (None: none)."""
        return None

    def reloadable_keys(self) -> Set[str]:
        """``state_dict`` keys (relative to this module) of frozen weights that are reloaded from a pretrained dir
        whenever the encoder is built, so checkpoints may leave them out. None by default."""
        return set()
