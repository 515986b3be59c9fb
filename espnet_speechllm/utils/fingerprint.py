"""Content fingerprints of files and data dirs, for the done-markers of recipe steps.

A marker that records paths alone would let a rerun reuse outputs made from an older model, config or data dir of
the same name; ``bin/fingerprint.py`` (its ``--help``) lists what each kind of input is described by.
"""
import hashlib
import os
from typing import Dict

HEAD_BYTES = 1 << 20
KEY_FILES = ("wav.scp", "text", "utt2spk", "utt2num_samples", "segments", "feats.scp")


def _sha256(path: str, head_tail: bool = False) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if head_tail:
            h.update(f.read(HEAD_BYTES))
            f.seek(-HEAD_BYTES, os.SEEK_END)
            h.update(f.read(HEAD_BYTES))
        else:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def file_fingerprint(path: str) -> str:
    """sha256 of a small file; size and the sha256 of the first and last MB of a large one (the last MB of a
    torch checkpoint, a zip, holds the CRC-32 of every entry). No mtime: ESPnet rewrites the same averaged model
    at the end of every launch."""
    size = os.path.getsize(path)
    if size <= 2 * HEAD_BYTES:
        return f"sha256={_sha256(path)}"
    return f"size={size} sha256_first_last_mb={_sha256(path, head_tail=True)}"


# Files of a model dir that describe it without being read by the model (a model card, a training report).
NOT_MODEL_FILES = (".md", "pretrain_report.json")


def model_dir_fingerprints(model_dir: str) -> Dict[str, str]:
    """``{file name: fingerprint}`` of what a model dir's model is built from: its config, tokenizer and weight
    files (not recursive; hidden files, READMEs and reports left out)."""
    return {name: file_fingerprint(os.path.join(model_dir, name)) for name in sorted(os.listdir(model_dir))
            if os.path.isfile(os.path.join(model_dir, name)) and not name.startswith(".")
            and not name.endswith(NOT_MODEL_FILES)}


def fingerprint(path: str) -> str:
    """One line describing the content of ``path`` (file, data dir or missing)."""
    if os.path.isfile(path):
        return file_fingerprint(path)
    if os.path.isdir(path):
        parts = [f"{name}:{file_fingerprint(os.path.join(path, name))}"
                 for name in KEY_FILES if os.path.isfile(os.path.join(path, name))]
        return " ".join(parts) if parts else "dir (no key files)"
    return "missing"
