"""Print the speech encoder a training run uses: the ``encoder`` of its YAML, or of the extra arguments of
``speechllm_train`` when they override it (as ESPnet's parser reads them: any YAML style, ``--encoder X``,
``--encoder=X``, a later ``--config``). The recipe asks it whether stage 8 dumps the outputs of a frozen encoder
(``precomputed``) before training. With ``--dump_dir true`` it prints where, under the recipe's dump dir, stage 8
dumps what training reads: ``encoder_feats/<config name>`` (a precomputed encoder's outputs),
``frontend_feats/<encoder>-<hash>`` (``encoder_conf.precomputed_frontend``: the waveform CNN's outputs, shared by
every config with the same encoder) or ``none`` (training reads audio).

    python -m espnet_speechllm.bin.which_encoder --train_config conf/train.yaml -- --encoder precomputed
    precomputed
"""
import argparse
import os
from typing import List, Optional

from espnet_speechllm.encoder.precomputed import dump_dir_name
from espnet_speechllm.registry import train_encoder
from espnet_speechllm.utils.cli import MissingInputError, UserError, make_parser, run_main, setup_logging, str2bool


def get_parser() -> argparse.ArgumentParser:
    p = make_parser(__doc__)
    p.add_argument("--train_config", required=True, help="training YAML (speechllm_train --config)")
    p.add_argument("--dump_dir", type=str2bool, default=False,
                   help="print the dir stage 8 dumps features to, relative to the dump dir (or none), instead")
    p.add_argument("train_args", nargs="*", help="extra arguments of speechllm_train, after --")
    return p


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    if not os.path.isfile(args.train_config):
        raise MissingInputError(f"{args.train_config} not found")
    try:
        name, conf = train_encoder(args.train_config, args.train_args)
    except (ValueError, OSError) as e:
        raise UserError(f"{args.train_config}: {e}") from e
    print((dump_dir_name(args.train_config, name, conf) or "none") if args.dump_dir else name)


if __name__ == "__main__":
    run_main(main)
