"""Trainable parameters of every variant of ablation tables, before training: each variant's model built on the
meta device at the size of the foundation models' configs (no weights read, no memory allocated).

    python -m espnet_speechllm.bin.plan_params --spec conf/ablations.yaml --tables a_finetune \
        --llm_dir exp/pretrained/llm --out RESULTS.md

``--llm_dir`` needs the LLM's config.json and tokenizer; ``--encoder_dir`` the encoder's config.json (default:
the reference HuBERT-large config). With ``--out``, the tables replace the ``planned_params`` section of that
markdown file (the rest is kept); without, they are printed.
"""
import sys
from pathlib import Path

from espnet_speechllm.report.planned_params import planned_markdown
from espnet_speechllm.scoring.results_md import replace_section
from espnet_speechllm.utils.cli import make_parser, run_main, setup_logging


def get_parser():
    parser = make_parser(__doc__)
    parser.add_argument("--spec", required=True, help="ablation spec YAML (conf/ablations.yaml)")
    parser.add_argument("--tables", nargs="+", required=True, help="tables of the spec")
    parser.add_argument("--llm_dir", required=True, help="dir with the LLM's config.json and tokenizer")
    parser.add_argument("--encoder_dir", default=None, help="dir with the encoder's config.json "
                        "(default: the reference HuBERT-large config)")
    parser.add_argument("--out", default=None, help="markdown file whose planned_params section to (re)write")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    command = "python -m espnet_speechllm.bin.plan_params " + " ".join(sys.argv[1:] if argv is None else argv)
    text = planned_markdown(args.spec, args.tables, args.encoder_dir, args.llm_dir, command)
    if args.out:
        replace_section(Path(args.out), "planned_params", text)
    else:
        print(text)


if __name__ == "__main__":
    run_main(main)
