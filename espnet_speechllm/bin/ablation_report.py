"""Write the ablation tables (local/run_ablations.sh) into sections of RESULTS.md.

Reads ``plan.json`` from espnet_speechllm.bin.ablation_plan and, per run, ``<exp_root>/asr_llm_<tag>/``:
param_report.json (trainable parameters), train.log (training wall time, summed over its launches; valid token
accuracy of the last epoch) and ``<inference_tag>/<set>/score_wer/{result,hallucination}.json`` (stage 12).
The run line's wall time is the sum over the table's runs of what ``walltime.tsv`` (written by the runner: table,
variant, seed, step, seconds per step as it ran) records: per step its longest record, so a rerun that only
skips finished work adds nothing. With several seeds a cell shows ``mean ±spread`` where spread = (max - min) / 2 over the seeds (Sub/Del/Ins:
the means). A missing result is ``n/a`` and logged, never dropped silently.

Each table goes into its own section of ``--out``, ``<!-- ablations_<table>:begin -->`` ... ``:end -->``, after
an ``ablations`` section with the heading. Only the plan's tables are rewritten: running one table again keeps
the others, and the rest of the file (stage 13's report) is kept; stage 13 keeps these sections in turn.
"""
import json
import logging
from pathlib import Path

from espnet_speechllm.report.ablation_tables import read_walltime, write_report
from espnet_speechllm.utils.cli import make_parser, run_main, setup_logging

logger = logging.getLogger(__name__)


def get_parser():
    parser = make_parser(__doc__)
    parser.add_argument("--plan", required=True, help="plan.json written by ablation_plan")
    parser.add_argument("--exp_root", default="exp", help="the recipe's exp dir (default: %(default)s)")
    parser.add_argument("--out", default="RESULTS.md", help="markdown file to update (default: %(default)s)")
    parser.add_argument("--command", default="", help="command line to cite")
    parser.add_argument("--walltime", default=None,
                        help="the runner's walltime.tsv (default: walltime.tsv next to --plan)")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    plan = json.loads(Path(args.plan).read_text())
    walltime = Path(args.walltime) if args.walltime else Path(args.plan).parent / "walltime.tsv"
    write_report(plan, Path(args.exp_root), Path(args.out), args.command, read_walltime(walltime))
    logger.info(f"wrote the ablation tables {', '.join(plan['tables'])} into {args.out}")


if __name__ == "__main__":
    run_main(main)
