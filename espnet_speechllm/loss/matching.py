"""Matching loss between speech and text representations (paper Sec. 2.2).

The adapter output (T' frames) and the transcript's LLM text embeddings (L tokens) differ in length, so
a cross-attention with the text embeddings as *query* and the adapter outputs as *key/value* produces
an acoustic sequence of text length. Then ``a * MSE + b * (1 - cosine)`` against the text embeddings.

The text embeddings are a fixed target here (detached): the loss moves the adapter, the cross-attention
and whatever the encoder scheme leaves trainable towards the LLM's embedding space, never the embedding
table towards the speech (which would let both collapse onto each other).
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

MATCHING_KEYS = ("weight", "mse_weight", "cos_weight", "num_heads", "dropout")


class MatchingLoss(torch.nn.Module):
    """Cross-attention text->speech, then a*MSE + b*(1-cos), averaged over valid text tokens.

    Args:
        hidden_size: LLM hidden size (both sequences live in it after the adapter).
        mse_weight: ``a`` in the paper (the summary does not give its value; default 1.0).
        cos_weight: ``b`` in the paper (default 1.0).
        num_heads: attention heads of the cross-attention (default 1: one alignment map to inspect).
    """

    def __init__(self, hidden_size: int, mse_weight: float = 1.0, cos_weight: float = 1.0, num_heads: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"matching_loss_conf.num_heads={num_heads} does not divide hidden size {hidden_size}")
        if mse_weight < 0 or cos_weight < 0 or mse_weight + cos_weight == 0:
            raise ValueError(
                f"matching_loss_conf: mse_weight={mse_weight}, cos_weight={cos_weight}; need >= 0 and not both 0"
            )
        self.mse_weight = mse_weight
        self.cos_weight = cos_weight
        self.attention = torch.nn.MultiheadAttention(hidden_size, num_heads, dropout=dropout, batch_first=True)

    def align(self, text_emb: torch.Tensor, speech: torch.Tensor, speech_lengths: torch.Tensor,
              need_weights: bool = False) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(B, L, D) queries over (B, T', D) speech -> (B, L, D) aligned speech, (B, L, T') weights."""
        key_pad = torch.arange(speech.size(1), device=speech.device)[None, :] >= speech_lengths[:, None]  # (B, T')
        aligned, weights = self.attention(
            text_emb, speech, speech, key_padding_mask=key_pad, need_weights=need_weights,
            average_attn_weights=True,
        )
        return aligned, weights

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor, text_emb: torch.Tensor,
                text_lengths: torch.Tensor) -> Dict[str, torch.Tensor]:
        text_emb = text_emb.detach().to(speech.dtype)  # (B, L, D) fixed target
        aligned, _ = self.align(text_emb, speech, speech_lengths)  # (B, L, D)
        valid = torch.arange(text_emb.size(1), device=speech.device)[None, :] < text_lengths[:, None]  # (B, L)
        n = valid.sum().clamp(min=1)
        mse = ((aligned - text_emb) ** 2).mean(dim=-1)  # (B, L)
        cos = F.cosine_similarity(aligned.float(), text_emb.float(), dim=-1, eps=1e-6)  # (B, L)
        mse = (mse * valid).sum() / n
        one_minus_cos = ((1.0 - cos) * valid).sum() / n
        loss = self.mse_weight * mse + self.cos_weight * one_minus_cos
        return {"loss": loss, "mse": mse.detach(), "cos": (1.0 - one_minus_cos).detach()}
