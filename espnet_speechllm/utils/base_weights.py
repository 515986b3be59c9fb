"""Which base weights a checkpoint was trained on.

A checkpoint that leaves the frozen foundation-model weights out (``save_frozen_weights: false``, the default)
is only meaningful on top of the same weights: LoRA deltas and an adapter trained against one HuBERT or Vicuna
are noise on another. ``model_dir_digest`` summarises a model dir (``utils/fingerprint.py``) by its file names,
the whole of its small files (config, index, tokenizer) and the size, first and last MB of each large one (a
weight shard: retraining the same architecture keeps the sizes and the header, not the tensors). The model keeps the digests in a buffer,
so they travel inside every checkpoint; loading against other weights fails, naming the dir.

The buffer holds each 256-bit digest as 16 chunks of 16 bits in float32: exact under ESPnet's checkpoint
averaging (a sum of n identical values divided by n), which sums integer tensors instead of averaging them.
"""
import hashlib
import json
from typing import Optional

import torch

from espnet_speechllm.utils.fingerprint import model_dir_fingerprints

CHUNKS = 16


def model_dir_digest(model_dir: str) -> bytes:
    """sha256 over the fingerprints of the files the dir's model is built from (``model_dir_fingerprints``)."""
    return hashlib.sha256(json.dumps(model_dir_fingerprints(model_dir), sort_keys=True).encode()).digest()


def digest_tensor(model_dir: Optional[str]) -> torch.Tensor:
    """(16,) float32: the digest of ``model_dir`` in 16-bit chunks; zeros for None (no weights left out)."""
    if model_dir is None:
        return torch.zeros(CHUNKS)
    digest = model_dir_digest(model_dir)
    return torch.tensor([int.from_bytes(digest[2 * i : 2 * i + 2], "big") for i in range(CHUNKS)],
                        dtype=torch.float32)


def short_hex(row: torch.Tensor) -> str:
    """The first 8 hex digits of a digest row, for messages ("none" for zeros)."""
    if not bool(row.any()):
        return "none"
    return "".join(f"{int(v):04x}" for v in row[:2].round().tolist())
