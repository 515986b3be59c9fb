"""Linear adapter (paper Sec. 3 baseline): stack k consecutive frames, one linear projection."""
from typing import Tuple

import torch

from espnet_speechllm.adapter.abs_adapter import AbsAdapter, downsampled_lengths, mask_padding, pad_to_multiple


class LinearAdapter(AbsAdapter):
    """Frame stacking by ``downsample_rate`` then Linear(D_enc * k -> output_size)."""

    def __init__(self, input_size: int, output_size: int, downsample_rate: int = 5):
        super().__init__()
        self.downsample_rate = downsample_rate
        self.proj = torch.nn.Linear(input_size * downsample_rate, output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = pad_to_multiple(mask_padding(x, lengths), self.downsample_rate)  # (B, T, D_enc)
        b, t, d = x.shape
        x = x.reshape(b, t // self.downsample_rate, d * self.downsample_rate)  # (B, T/k, k*D_enc)
        return self.proj(x), downsampled_lengths(lengths, self.downsample_rate)  # (B, T/k, D_llm)
