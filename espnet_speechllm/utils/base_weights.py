"""Which base weights a checkpoint was trained on.

A checkpoint that leaves the frozen foundation-model weights out (``save_frozen_weights: false``, the default)
is only meaningful on top of the same weights: LoRA deltas and an adapter trained against one HuBERT or Vicuna
are noise on another. ``model_dir_digest`` summarises a model dir by its file names and sizes, the whole of its
small files (config, index, tokenizer) and the first and last MB of each large one (a weight shard: retraining
the same architecture keeps the sizes and the header, not the tensors). The model keeps the digests in a buffer,
so they travel inside every checkpoint; loading against other weights fails, naming the dir.

The buffer holds each 256-bit digest as 16 chunks of 16 bits in float32: exact under ESPnet's checkpoint
averaging (a sum of n identical values divided by n), which sums integer tensors instead of averaging them.
"""
import hashlib
import os
from typing import Optional

import torch

WHOLE_FILE_BYTES = 2 << 20  # files up to this size are hashed whole
EDGE_BYTES = 1 << 20  # of larger files: the first and the last MB
CHUNKS = 16
# Files of a model dir that describe it without being read by the model (a model card, a training report).
NOT_WEIGHTS = (".md", "pretrain_report.json")


def model_dir_digest(model_dir: str) -> bytes:
    """sha256 over the dir's files (not recursive; not READMEs or reports): name, size and content or its first and
    last MB."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(model_dir)):
        path = os.path.join(model_dir, name)
        if not os.path.isfile(path) or name.startswith(".") or name.endswith(NOT_WEIGHTS):
            continue
        size = os.path.getsize(path)
        h.update(f"{name}\t{size}\n".encode())
        with open(path, "rb") as f:
            if size <= WHOLE_FILE_BYTES:
                h.update(f.read())
            else:
                h.update(f.read(EDGE_BYTES))
                f.seek(-EDGE_BYTES, os.SEEK_END)
                h.update(f.read(EDGE_BYTES))
    return h.digest()


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
