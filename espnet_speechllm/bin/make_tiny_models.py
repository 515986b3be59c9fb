#!/usr/bin/env python3
"""Make small real foundation models in HF format: a Llama-architecture LLM with a sentencepiece tokenizer
and a HuBERT-architecture speech encoder, saved with ``save_pretrained``.

They load back through exactly the code path used for vicuna-7b-v1.5 and hubert-large-ll60k
(``AutoTokenizer``/``AutoModelForCausalLM``/``AutoModel.from_pretrained`` on a local dir). Optionally
pretrains them: the LLM on a text pool (causal LM with stretched copies, pretrain/text_lm.py), the encoder with
CTC on the LLM's tokens or on characters (pretrain/ctc_encoder.py). The LLM and the encoder train at once, one
core each. ``build_info.json`` (inputs' sha256, wall time) and ``SHA256SUMS`` describe the result.

    python -m espnet_speechllm.bin.make_tiny_models --output_dir exp/pretrained --text data/local/lm_text.txt \\
        [--pretrain_data data/pretrain_encoder] [--config conf/tiny_models.yaml]

Writes ``<output_dir>/{llm,encoder}``, a done-marker per model (``llm.done``, ``encoder.done``: the settings
and inputs it was made from) and ``<output_dir>/tiny_models.done``. With --force true a rebuild retrains only
the models whose settings or inputs changed; delete <output_dir> to rebuild both.
"""
import argparse
import os

from espnet_speechllm.pretrain.tiny_config import DEFAULTS
from espnet_speechllm.pretrain.tiny_models import make_tiny_models
from espnet_speechllm.utils.cli import add_force, make_parser, setup_logging


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument("--output_dir", required=True, help="writes <dir>/llm and <dir>/encoder")
    parser.add_argument("--text", required=True, help="text pool, one sentence per line (tokenizer + LLM pretraining)")
    parser.add_argument("--pretrain_data", default=None, help="data dir (wav.scp, text) for encoder CTC pretraining")
    parser.add_argument("--config", default=None, help="YAML overriding the defaults: sections " + ", ".join(DEFAULTS))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="CPU threads in all (default: every core); two models that train at once get half each")
    add_force(parser, "rebuild the models whose settings or inputs changed (a stop without it)")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    make_tiny_models(args.output_dir, args.text, args.pretrain_data, args.config, args.threads, args.force)


if __name__ == "__main__":
    main()
