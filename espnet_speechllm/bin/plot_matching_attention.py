"""Plot the matching loss's cross-attention map of one utterance: text tokens (query) over adapter frames.

A trained matching loss attends along a diagonal: each transcript token to the frames where it is spoken.
Writes a PNG (token rows x time columns, seconds on the x axis) and, next to it, the weights as .npy.

Example:
  python -m espnet_speechllm.bin.plot_matching_attention --exp_dir exp/asr_llm_train \\
      --data_dir dump/raw/test_clean --out exp/asr_llm_train/images/matching_attention.png
"""
from espnet_speechllm.report.matching_attention import plot_matching_attention
from espnet_speechllm.utils.cli import make_parser, run_main, setup_logging


def get_parser():
    parser = make_parser(__doc__)
    parser.add_argument("--exp_dir", required=True, help="experiment dir with config.yaml and the model file")
    parser.add_argument("--model_file", default="valid.acc.ave.pth", help="in --exp_dir (default: %(default)s)")
    parser.add_argument("--data_dir", required=True, help="data dir with wav.scp and text")
    parser.add_argument("--utt_id", default="", help="utterance to plot (default: the first with a transcript)")
    parser.add_argument("--out", required=True, help="PNG to write")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    plot_matching_attention(args.exp_dir, args.model_file, args.data_dir, args.utt_id, args.out)


if __name__ == "__main__":
    run_main(main)
