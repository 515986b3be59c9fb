"""DwsMLP adapter (paper Sec. 3): depthwise-separable strided conv downsampling, then a 2-layer MLP."""
from typing import Tuple

import torch

from espnet_speechllm.adapter.abs_adapter import AbsAdapter, downsampled_lengths, mask_padding, pad_to_multiple


class DwsMLPAdapter(AbsAdapter):
    """Depthwise Conv1d(kernel=stride=k, groups=D_enc) -> pointwise Conv1d -> MLP(output_size).

    Far fewer conv parameters than Conv1dMLP (D_enc*k + D_enc*H instead of D_enc*H*k).
    """

    def __init__(self, input_size: int, output_size: int, downsample_rate: int = 5, hidden_size: int = 2048,
                 dropout: float = 0.0):
        super().__init__()
        self.downsample_rate = downsample_rate
        self.depthwise = torch.nn.Conv1d(
            input_size, input_size, kernel_size=downsample_rate, stride=downsample_rate, groups=input_size
        )
        self.pointwise = torch.nn.Conv1d(input_size, hidden_size, kernel_size=1)
        self.mlp = torch.nn.Sequential(
            torch.nn.GELU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden_size, hidden_size),
            torch.nn.GELU(),
            torch.nn.Linear(hidden_size, output_size),
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = pad_to_multiple(mask_padding(x, lengths), self.downsample_rate)  # (B, T, D_enc)
        x = self.pointwise(self.depthwise(x.transpose(1, 2))).transpose(1, 2)  # (B, T/k, H)
        return self.mlp(x), downsampled_lengths(lengths, self.downsample_rate)  # (B, T/k, D_llm)
