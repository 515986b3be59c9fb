#!/usr/bin/env python3
"""Stage 10: make sure the averaged inference model exists and export LoRA adapters in PEFT format.

    python -m espnet_speechllm.bin.finalize_model --exp_dir exp/asr_llm_train [--inference_model valid.acc.ave.pth]

ESPnet's Trainer averages the n-best checkpoints when training finishes; when it did not get there (an
interrupted run), the averaging is redone here from ``checkpoint.pth``'s reporter. Then each side trained
with LoRA is written to ``<exp_dir>/peft/{encoder,llm}`` (``adapter_config.json`` +
``adapter_model.safetensors``), loadable with ``peft.PeftModel.from_pretrained(base_model, dir)``.
"""
import argparse
import logging
import os
from pathlib import Path

import torch
import yaml

from espnet_speechllm.peft_export import export_lora_adapters
from espnet_speechllm.utils.cli import add_force, make_parser, setup_logging

logger = logging.getLogger("finalize_model")


def ensure_averaged_model(exp_dir: Path, inference_model: str, config: dict) -> Path:
    target = exp_dir / inference_model
    if target.exists():
        logger.info(f"{target} exists")
        return target
    checkpoint = exp_dir / "checkpoint.pth"
    if not checkpoint.exists():
        raise SystemExit(f"neither {target} nor {checkpoint} exists: run training (stage 9) first")
    from espnet2.main_funcs.average_nbest_models import average_nbest_models
    from espnet2.train.reporter import Reporter

    reporter = Reporter()
    # Our own training checkpoint (optimizer and reporter state need full unpickling).
    reporter.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=False)["reporter"])
    criteria = [tuple(c) for c in config.get("best_model_criterion", [["valid", "acc", "max"]])]
    nbest = config.get("keep_nbest_models", 10)
    logger.info(f"averaging the {nbest} best checkpoints by {criteria} into {exp_dir}")
    average_nbest_models(exp_dir, reporter, criteria, nbest)
    if not target.exists():
        raise SystemExit(f"averaging did not produce {target}; pick --inference_model from {sorted(os.listdir(exp_dir))}")
    return target


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument("--exp_dir", required=True, help="training output dir (holds config.yaml)")
    parser.add_argument("--inference_model", default="valid.acc.ave.pth", help="model file name in exp_dir")
    add_force(parser, "rewrite an existing peft/ export")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    exp_dir = Path(args.exp_dir)
    with open(exp_dir / "config.yaml", encoding="utf-8") as f:
        config = yaml.safe_load(f)
    model_file = ensure_averaged_model(exp_dir, args.inference_model, config)
    peft_dir = exp_dir / "peft"
    if peft_dir.exists() and not args.force:
        logger.info(f"{peft_dir} exists: skipping the PEFT export (--force true redoes it)")
        return
    state = torch.load(model_file, map_location="cpu", weights_only=True)
    written = export_lora_adapters(state, config, peft_dir)
    if not written:
        logger.info("no side was trained with LoRA: nothing to export")
    for side, path in written.items():
        logger.info(f"{side} LoRA adapter -> {path}")


if __name__ == "__main__":
    main()
