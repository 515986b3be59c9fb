"""Conv1dTransformer adapter (paper Sec. 3): strided Conv1d downsampling, Transformer layers, projection."""
from typing import Tuple

import torch

from espnet_speechllm.adapter.abs_adapter import AbsAdapter, downsampled_lengths, mask_padding, pad_to_multiple


class Conv1dTransformerAdapter(AbsAdapter):
    """Conv1d(kernel=stride=k) -> N pre-LN Transformer encoder layers (padding-masked) -> Linear(output_size)."""

    def __init__(self, input_size: int, output_size: int, downsample_rate: int = 5, hidden_size: int = 1024,
                 num_layers: int = 2, num_heads: int = 8, ffn_size: int = 4096, dropout: float = 0.1):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"adapter_conf.hidden_size={hidden_size} not divisible by num_heads={num_heads}")
        self.downsample_rate = downsample_rate
        self.conv = torch.nn.Conv1d(input_size, hidden_size, kernel_size=downsample_rate, stride=downsample_rate)
        layer = torch.nn.TransformerEncoderLayer(
            hidden_size, num_heads, ffn_size, dropout=dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.layers = torch.nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = torch.nn.LayerNorm(hidden_size)
        self.proj = torch.nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = pad_to_multiple(mask_padding(x, lengths), self.downsample_rate)  # (B, T, D_enc)
        x = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, T/k, H)
        out_lengths = downsampled_lengths(lengths, self.downsample_rate)
        pad = torch.arange(x.size(1), device=x.device)[None, :] >= out_lengths[:, None]  # (B, T/k) True = pad
        x = self.layers(x, src_key_padding_mask=pad)
        return self.proj(self.norm(x)), out_lengths  # (B, T/k, D_llm)
