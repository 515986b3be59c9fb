"""An ablation spec expanded into a run plan: one training + decoding YAML per variant, ``plan.json`` and the
tab-separated rows that local/run_ablations.sh reads. The spec format is the ``--help`` of bin/ablation_plan.py."""
import copy
import json
import os
import re
import shlex
from typing import Any, Dict, List, Optional, Sequence

import yaml

from espnet_speechllm.utils.cli import MissingInputError, UserError

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


# Columns of the rows printed for local/run_ablations.sh (an empty value prints as "-").
PLAN_FIELDS = ("table", "variant", "seed", "asr_tag", "train_config", "inference_config", "inference_tag",
               "final_set", "train", "data_args")


def plan_rows(runs: Sequence[Dict[str, Any]]) -> List[str]:
    """One tab-separated line per run, in ``PLAN_FIELDS`` order (``train`` as true/false)."""
    rows = []
    for run in runs:
        row = [str(run[k]).lower() if k == "train" else str(run[k]) for k in PLAN_FIELDS]
        rows.append("\t".join(v if v else "-" for v in row) + "\n")
    return rows
