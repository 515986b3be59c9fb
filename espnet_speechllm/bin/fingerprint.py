"""Content fingerprints of the inputs of a recipe step, for its done-marker (one line per input).

    python -m espnet_speechllm.bin.fingerprint conf/decode.yaml exp/asr_llm_train/valid.acc.ave.pth dump/raw/test_clean

A done-marker that records paths alone lets a rerun reuse outputs made from an older model, config or data dir
with the same name. Each input is described by what it holds:
  - a file up to 2 MB (configs, lists): its sha256;
  - a larger file (model weights): its size and the sha256 of its first and last MB. The last MB of a
    torch checkpoint (a zip) holds the CRC-32 of every entry, so it changes with any tensor. The mtime is
    left out: ESPnet's Trainer rewrites the same averaged model at the end of every launch, resumed or not;
  - a dir (a Kaldi data dir, a dump dir): the fingerprints of its key files (wav.scp, text, utt2spk,
    utt2num_samples, segments, feats.scp; those present);
  - a missing path: "missing".
Output lines are ``<path> <fingerprint>``, in argument order, and stable while the inputs do not change.
"""
import hashlib
import os
import sys
from typing import List, Optional

from espnet_speechllm.utils.cli import make_parser

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
    size = os.path.getsize(path)
    if size <= 2 * HEAD_BYTES:
        return f"sha256={_sha256(path)}"
    return f"size={size} sha256_first_last_mb={_sha256(path, head_tail=True)}"


def fingerprint(path: str) -> str:
    """One line describing the content of ``path`` (file, data dir or missing)."""
    if os.path.isfile(path):
        return file_fingerprint(path)
    if os.path.isdir(path):
        parts = [f"{name}:{file_fingerprint(os.path.join(path, name))}"
                 for name in KEY_FILES if os.path.isfile(os.path.join(path, name))]
        return " ".join(parts) if parts else "dir (no key files)"
    return "missing"


def get_parser():
    parser = make_parser(__doc__)
    parser.add_argument("paths", nargs="+", help="files or dirs")
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    for path in args.paths:
        sys.stdout.write(f"{path} {fingerprint(path)}\n")


if __name__ == "__main__":
    main()
