"""Print the speech encoder a training run uses: the ``encoder`` of its YAML, or of the extra arguments of
``speechllm_train`` when they override it (as ESPnet's parser reads them: any YAML style, ``--encoder X``,
``--encoder=X``, a later ``--config``). The recipe asks it whether stage 8 dumps the outputs of a frozen encoder
(``precomputed``) before training.

    python -m espnet_speechllm.bin.which_encoder --train_config conf/train.yaml -- --encoder precomputed
    precomputed
"""
import argparse
import os
from typing import List, Optional

from espnet_speechllm.registry import train_encoder
from espnet_speechllm.utils.cli import MissingInputError, UserError, make_parser, run_main, setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = make_parser(__doc__)
    p.add_argument("--train_config", required=True, help="training YAML (speechllm_train --config)")
    p.add_argument("train_args", nargs="*", help="extra arguments of speechllm_train, after --")
    return p


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    if not os.path.isfile(args.train_config):
        raise MissingInputError(f"{args.train_config} not found")
    try:
        name, _ = train_encoder(args.train_config, args.train_args)
    except (ValueError, OSError) as e:
        raise UserError(f"{args.train_config}: {e}") from e
    print(name)


if __name__ == "__main__":
    run_main(main)
