"""Conv1dMLP adapter (paper Sec. 3, default): strided Conv1d downsampling, then a 2-layer MLP."""
from typing import Tuple

import torch

from espnet_speechllm.adapter.abs_adapter import AbsAdapter, downsampled_lengths, mask_padding, pad_to_multiple


class Conv1dMLPAdapter(AbsAdapter):
    """Conv1d(kernel=stride=downsample_rate) -> GELU -> Linear -> GELU -> Linear(output_size).

    Args:
        input_size: encoder width (filled in by the task).
        output_size: LLM hidden size (filled in by the task).
        downsample_rate: frames merged into one (HuBERT 50 Hz / 5 = 10 Hz into the LLM).
        hidden_size: width of the conv output and MLP hidden layer.
    """

    def __init__(self, input_size: int, output_size: int, downsample_rate: int = 5, hidden_size: int = 2048,
                 dropout: float = 0.0):
        super().__init__()
        self.downsample_rate = downsample_rate
        self.conv = torch.nn.Conv1d(input_size, hidden_size, kernel_size=downsample_rate, stride=downsample_rate)
        self.mlp = torch.nn.Sequential(
            torch.nn.GELU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden_size, hidden_size),
            torch.nn.GELU(),
            torch.nn.Linear(hidden_size, output_size),
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = pad_to_multiple(mask_padding(x, lengths), self.downsample_rate)  # (B, T, D_enc)
        x = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, T/k, H)
        return self.mlp(x), downsampled_lengths(lengths, self.downsample_rate)  # (B, T/k, D_llm)
