"""Expand an ablation spec (conf/ablations.yaml) into one training + decoding YAML per variant and a run plan.

A variant is the recipe's base configs plus overrides, merged key by key (a ``null`` removes a key):

    train_config: conf/train.yaml            # base training YAML (a variant may name its own)
    inference_config: conf/decode.yaml       # base decoding YAML
    train: {max_epoch: 2}                    # overrides applied to every variant (optional)
    tables:
      a_finetune:
        title: "(a) Fine-tuning schemes"
        attention_plots: false               # true: RESULTS.md shows each variant's matching-loss attention map
        variants:
          frozen_lora: {train: {encoder_conf: {finetune: frozen, lora_conf: null}}}
      c_insertion:
        variants:
          baseline:    {data: {speed_perturb_factors: "", noise_aug_ratio: 0, nonspeech_ratio: 0},
                        inference: {no_repeat_ngram_size: 0}}
          constraints: {same_model_as: baseline}   # decode the model of another row with other settings

``data`` holds asr_llm.sh options of stages 3-5 (only those of ``DATA_KEYS``; values are scalars); a variant
with data options trains on its own stage-5 set ``<train_set>_abl_<table>_<variant>``, the others on the
recipe's default set. Table and variant names become dir names: letters, digits, ``_``, ``.`` and ``-`` only.

Writes ``<out_dir>/conf/<table>/<variant>.yaml`` (+ ``_decode.yaml``), ``<out_dir>/plan.json`` and prints
the plan as tab-separated lines for local/run_ablations.sh:
    table variant seed asr_tag train_config inference_config inference_tag final_set train data_args
where ``data_args`` is a file of the variant's data options as NUL-terminated arguments (``-`` when none):
no option or value is ever read by a shell.
"""
import sys

from espnet_speechllm.report.ablation_plan import build_plan, plan_rows
from espnet_speechllm.utils.cli import make_parser, run_main, setup_logging


def get_parser():
    parser = make_parser(__doc__)
    parser.add_argument("--spec", required=True, help="ablation spec YAML (conf/ablations.yaml)")
    parser.add_argument("--tables", nargs="+", required=True, help="table names of the spec to run")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds (default: 0)")
    parser.add_argument("--out_dir", default="exp/ablations", help="where the YAMLs and plan.json go")
    parser.add_argument("--train_set", default="train", help="the recipe's --train_set (names data variants)")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    runs = build_plan(args.spec, args.tables, args.seeds, args.out_dir, args.train_set)
    sys.stdout.write("".join(plan_rows(runs)))


if __name__ == "__main__":
    run_main(main)
