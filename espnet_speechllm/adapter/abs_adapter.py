"""Adapter interface: encoder frames (B, T, D_enc) -> LLM-width embeddings (B, T', D_llm)."""
from abc import ABC, abstractmethod
from typing import Tuple

import torch


def mask_padding(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero frames past each length so padding never leaks into a convolution window."""
    valid = torch.arange(x.size(1), device=x.device)[None, :] < lengths[:, None]  # (B, T)
    return x * valid.unsqueeze(-1).to(x.dtype)


def pad_to_multiple(x: torch.Tensor, k: int) -> torch.Tensor:
    """Right-pad the time axis of (B, T, D) with zeros to a multiple of k."""
    rest = (-x.size(1)) % k
    return torch.nn.functional.pad(x, (0, 0, 0, rest)) if rest else x


def downsampled_lengths(lengths: torch.Tensor, k: int) -> torch.Tensor:
    """ceil(lengths / k): a partial last window still yields one output frame."""
    return torch.div(lengths + k - 1, k, rounding_mode="floor")


class AbsAdapter(torch.nn.Module, ABC):
    @abstractmethod
    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError
