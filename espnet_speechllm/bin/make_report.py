"""Write an ESPnet-style RESULTS.md and plots for experiment dirs (recipe stage 13).

What is read and written: ``espnet_speechllm/report/results_report.py``.

Example:
  python -m espnet_speechllm.bin.make_report --exp_dir 'exp/asr_*' --out RESULTS.md \\
      --config_file conf/train_asr_llm.yaml
"""

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from espnet_speechllm.report.results_report import expand_exp_dirs, make_report
from espnet_speechllm.utils.cli import run_main, setup_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Write RESULTS.md (environment, params, WER and hallucination tables) and PNG plots "
        "from scored experiment dirs.",
    )
    parser.add_argument(
        "--exp_dir",
        action="append",
        required=True,
        help="experiment dir exp/<tag>; repeatable; shell-style globs are expanded ('exp/asr_*')",
    )
    parser.add_argument("--out", default="RESULTS.md", help="markdown file to write (default: %(default)s)")
    parser.add_argument("--config_file", default=None, help="training config to cite (default: <exp>/config.yaml)")
    parser.add_argument("--dump_dir", default=None,
                        help="dump dir of the scored sets (dump/raw): their stage-6 drops are noted under the tables")
    parser.add_argument(
        "--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="(default: %(default)s)"
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    make_report(expand_exp_dirs(args.exp_dir), Path(args.out), args.config_file, argv,
                Path(args.dump_dir) if args.dump_dir else None)


if __name__ == "__main__":
    run_main(main)
