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
import sys
from typing import List, Optional

from espnet_speechllm.utils.cli import make_parser
from espnet_speechllm.utils.fingerprint import fingerprint


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
