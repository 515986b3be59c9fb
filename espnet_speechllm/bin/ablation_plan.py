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
import copy
import json
import os
import re
import shlex
import sys
from typing import Any, Dict, List, Optional, Sequence

import yaml

from espnet_speechllm.utils.cli import MissingInputError, UserError, make_parser, run_main, setup_logging

VARIANT_KEYS = {"train_config", "train", "inference", "data", "same_model_as", "description"}
TABLE_KEYS = {"title", "claim", "variants", "attention_plots"}
TOP_KEYS = {"train_config", "inference_config", "train", "inference", "tables"}
# asr_llm.sh options of stages 3-5 that a data variant may set.
DATA_KEYS = {"speed_perturb_factors", "noise_aug_ratio", "noise_snr_range", "nonspeech_ratio",
             "nonspeech_edges_ratio", "nonspeech_edge_seconds"}
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def merge(base: Any, override: Any) -> Any:
    """Deep-merge ``override`` into a copy of ``base``; a None value deletes the key."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def _check_keys(where: str, got: dict, allowed: set) -> None:
    unknown = sorted(set(got) - allowed)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def load_yaml(path: str) -> dict:
    if not os.path.isfile(path):
        raise MissingInputError(f"{path}: no such file")
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def data_args(where: str, data: Optional[dict]) -> List[str]:
    """The data options as an argument vector (``--key value`` ...), keys checked against ``DATA_KEYS``."""
    data = data or {}
    _check_keys(where, data, DATA_KEYS)
    args: List[str] = []
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise UserError(f"{where}.{key}: {value!r} is not a string or number")
        if "\0" in str(value):
            raise UserError(f"{where}.{key}: the value holds a NUL character")
        args += [f"--{key}", str(value)]
    return args


def _check_name(where: str, name: Any) -> None:
    if not isinstance(name, str):  # YAML 1.1 reads off/on/yes/no as booleans
        raise UserError(f"{where}: name {name!r} is not a string; quote it")
    if not _NAME.fullmatch(name):
        raise UserError(f"{where}: name {name!r} may hold only letters, digits, '_', '.' and '-' (it names dirs)")


def build_plan(spec_path: str, tables: Sequence[str], seeds: Sequence[int], out_dir: str,
               train_set: str) -> List[Dict[str, Any]]:
    """Writes the per-variant YAMLs and returns the runs in execution order (trainings before reuses)."""
    spec = load_yaml(spec_path)
    _check_keys(spec_path, spec, TOP_KEYS)
    for key in ("train_config", "inference_config", "tables"):
        if key not in spec:
            raise UserError(f"{spec_path}: '{key}' is required")
    common_train = spec.get("train") or {}
    base_infer = merge(load_yaml(spec["inference_config"]), spec.get("inference") or {})
    unknown_tables = sorted(set(tables) - set(spec["tables"]))
    if unknown_tables:
        raise UserError(f"--tables {unknown_tables}: not in {spec_path} (has {sorted(spec['tables'])})")
    runs: List[Dict[str, Any]] = []
    for table in tables:
        _check_name(f"{spec_path}: tables", table)
        tdef = spec["tables"][table]
        _check_keys(f"{spec_path}: tables.{table}", tdef, TABLE_KEYS)
        variants = tdef.get("variants") or {}
        if not variants:
            raise UserError(f"{spec_path}: tables.{table} has no variants")
        conf_dir = os.path.join(out_dir, "conf", table)
        os.makedirs(conf_dir, exist_ok=True)
        for name, vdef in variants.items():
            _check_name(f"{spec_path}: tables.{table}: variant", name)
            vdef = vdef or {}
            _check_keys(f"{spec_path}: tables.{table}.variants.{name}", vdef, VARIANT_KEYS)
            owner = vdef.get("same_model_as")
            if owner is not None and owner not in variants:
                raise UserError(f"{spec_path}: tables.{table}.variants.{name}.same_model_as: no variant {owner!r}")
            if owner is not None and {"train", "train_config", "data"} & set(vdef):
                raise UserError(
                    f"{spec_path}: tables.{table}.variants.{name}: same_model_as excludes train_config/train/data"
                )
            model_variant = owner or name
            model_def = variants[model_variant] or {}
            train_yaml = os.path.join(conf_dir, f"{model_variant}.yaml")
            infer_yaml = os.path.join(conf_dir, f"{name}_decode.yaml")
            with open(train_yaml, "w", encoding="utf-8") as f:
                base_train = load_yaml(model_def.get("train_config", spec["train_config"]))
                yaml.safe_dump(merge(merge(base_train, common_train), model_def.get("train") or {}), f, sort_keys=False)
            with open(infer_yaml, "w", encoding="utf-8") as f:
                yaml.safe_dump(merge(base_infer, vdef.get("inference") or {}), f, sort_keys=False)
            data = model_def.get("data")
            args = data_args(f"{spec_path}: tables.{table}.variants.{model_variant}.data", data)
            args_file = ""
            if args:
                args_file = os.path.join(conf_dir, f"{model_variant}.data_args")
                with open(args_file, "w", encoding="utf-8") as f:
                    f.write("".join(a + "\0" for a in args))
            for seed in seeds:
                runs.append({
                    "table": table, "variant": name, "seed": seed,
                    "asr_tag": f"abl_{table}_{model_variant}_s{seed}",
                    "train_config": train_yaml, "inference_config": infer_yaml,
                    "inference_tag": f"decode_{name}",
                    "final_set": f"{train_set}_abl_{table}_{model_variant}" if data else "",
                    "train": owner is None, "data_args": args_file,
                    "data_opts": " ".join(shlex.quote(a) for a in args),
                    "title": tdef.get("title", table), "description": vdef.get("description", ""),
                })
    runs.sort(key=lambda r: not r["train"])  # every model is trained before another row decodes it
    with open(os.path.join(out_dir, "plan.json"), "w", encoding="utf-8") as f:
        json.dump({"spec": spec_path, "seeds": list(seeds), "tables": {t: spec["tables"][t] for t in tables},
                   "runs": runs}, f, indent=2)
    return runs


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
    fields = ("table", "variant", "seed", "asr_tag", "train_config", "inference_config", "inference_tag",
              "final_set", "train", "data_args")
    for run in runs:
        row = [str(run[k]).lower() if k == "train" else str(run[k]) for k in fields]
        sys.stdout.write("\t".join(v if v else "-" for v in row) + "\n")


if __name__ == "__main__":
    run_main(main)
