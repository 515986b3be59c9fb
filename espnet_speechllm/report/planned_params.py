"""Trainable parameters of an ablation table's variants, known before anyone trains.

Each variant's training YAML (from its ablation spec) is built on the meta device: no memory is allocated and no
weights are read, so the full-size model of a GPU recipe (HuBERT-large + Vicuna-7B) builds on a laptop in
seconds. The foundation models come from their architecture alone: the encoder from the ``config.json`` of
``encoder_dir`` (or the reference HuBERT-large config), the LLM from ``llm_dir``'s config and tokenizer (the
tokenizer gives the prompt). The counts are those ESPnet's training would log for the same YAML.
"""
import argparse
import json
import os
import tempfile
from typing import Any, Dict, List, Optional, Sequence

import torch
import yaml

from espnet_speechllm.report.ablation_plan import build_plan
from espnet_speechllm.utils.reference_configs import HUBERT_LARGE_LL60K

MODULE_COLUMNS = ("encoder", "adapter", "llm", "matching_loss")


def on_architectures(conf: Dict[str, Any], encoder_dir: Optional[str], llm_dir: str) -> Dict[str, Any]:
    """``conf`` with its foundation models built from their configs: random weights, nothing read but configs."""
    conf = dict(conf)
    encoder_conf = dict(conf.get("encoder_conf") or {})
    if conf.get("encoder") == "precomputed":  # its trainable parameters are the adapter's onwards
        encoder_conf["source_conf"] = {**encoder_conf.get("source_conf", {}), "model_dir": encoder_dir}
    else:
        if encoder_dir:
            with open(os.path.join(encoder_dir, "config.json"), encoding="utf-8") as f:
                hf_config = json.load(f)
        else:
            hf_config = dict(model_type="hubert", **HUBERT_LARGE_LL60K)
        encoder_conf.pop("model_dir", None)
        encoder_conf["hf_config"] = {k: v for k, v in hf_config.items() if k not in ("architectures",)}
    conf["encoder_conf"] = encoder_conf
    conf["llm_conf"] = {**(conf.get("llm_conf") or {}), "model_dir": llm_dir, "random_init": True}
    return conf


def count_variant(train_yaml: str, encoder_dir: Optional[str], llm_dir: str) -> Dict[str, Any]:
    """The parameter report (``SpeechLLMTask``'s) of a training YAML's model, built on the meta device."""
    from espnet_speechllm.tasks.speechllm import SpeechLLMTask, parameter_report

    args = SpeechLLMTask.get_parser().parse_args(["--config", train_yaml])
    conf = on_architectures(vars(args), encoder_dir, llm_dir)
    conf["output_dir"] = None
    with torch.device("meta"):
        model = SpeechLLMTask.build_model(argparse.Namespace(**conf))
    return parameter_report(model)


def planned_table(spec: str, table: str, encoder_dir: Optional[str], llm_dir: str) -> List[str]:
    """Markdown rows: per variant of ``table``, trainable parameters per module and in all."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = [r for r in build_plan(spec, [table], [0], tmp, "train") if r["train"]]
        header = ["variant"] + [f"{m} trainable" for m in MODULE_COLUMNS] + ["trainable", "total"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for run in runs:
            report = count_variant(run["train_config"], encoder_dir, llm_dir)
            cells = [run["variant"]]
            cells += [f"{report['modules'][m]['trainable']:,}" if m in report["modules"] else "-" for m in MODULE_COLUMNS]
            cells += [f"{report['trainable']:,}", f"{report['total']:,}"]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def planned_markdown(spec: str, tables: Sequence[str], encoder_dir: Optional[str], llm_dir: str,
                     command: str) -> str:
    """A RESULTS.md section: one planned-parameter table per ablation table."""
    with open(spec, encoding="utf-8") as f:
        titles = {name: (t or {}).get("title", name) for name, t in (yaml.safe_load(f).get("tables") or {}).items()}
    lines = ["## Planned ablations: trainable parameters", "",
             f"Every variant's model built on the meta device (random weights, nothing allocated) by `{command}`.",
             ""]
    for table in tables:
        lines += [f"### {titles.get(table, table)}", ""] + planned_table(spec, table, encoder_dir, llm_dir) + [""]
    return "\n".join(lines)
