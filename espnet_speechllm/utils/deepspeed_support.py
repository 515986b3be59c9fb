"""Checks of a ``--use_deepspeed true`` training run, made before ESPnet starts its workers.

DeepSpeed is optional: CPU installs (and the test suite) run without it, and nothing here imports it.
ESPnet's own handling of a missing or misconfigured DeepSpeed is a traceback from inside a spawned worker (or,
with a single process, a silent fall back to the plain Trainer, which then runs out of memory on a fully
fine-tuned 7B LLM). ``check_deepspeed_args`` turns each of those cases into one error that says what to do.
"""
import argparse
import importlib.util
import json
import logging
import os
from typing import Any, Dict

logger = logging.getLogger(__name__)


class DeepSpeedConfigError(ValueError):
    """A ``--use_deepspeed`` run that cannot work as configured."""


def deepspeed_available() -> bool:
    return importlib.util.find_spec("deepspeed") is not None


def _enabled(section: Any) -> bool:
    return isinstance(section, dict) and section.get("enabled") in (True, "true", "auto")


def load_deepspeed_config(path: str) -> Dict[str, Any]:
    if not path:
        raise DeepSpeedConfigError("--use_deepspeed true needs --deepspeed_config <json> (e.g. conf/deepspeed_zero2.json)")
    if not os.path.isfile(path):
        raise DeepSpeedConfigError(f"--deepspeed_config {path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except json.JSONDecodeError as e:
        raise DeepSpeedConfigError(f"--deepspeed_config {path} is not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise DeepSpeedConfigError(f"--deepspeed_config {path} must hold a JSON object")
    return config


def check_deepspeed_args(args: argparse.Namespace) -> None:
    """Raise ``DeepSpeedConfigError`` naming the problem when ``args.use_deepspeed`` cannot work; no-op otherwise.

    Checked, in this order: the ``deepspeed`` package is importable; the JSON exists and parses; the run is
    distributed (ESPnet only uses DeepSpeed with ``--ngpu`` > 1 or several nodes, on CUDA); the precision
    settings fit this model (native ``bf16``/``fp16`` would cast the encoder weights while it computes its
    waveform front-end in float32: use ``torch_autocast``, which needs float32 weights); ZeRO stage <= 2, whose
    checkpoints hold full weights that ESPnet's n-best averaging (stage 10) reads.
    """
    if not getattr(args, "use_deepspeed", False):
        return
    if not deepspeed_available():
        raise DeepSpeedConfigError(
            "--use_deepspeed true, but the deepspeed package is not installed in this Python environment: "
            "install it on the GPU machines (pip install deepspeed), or train without DeepSpeed "
            "(use_deepspeed: false, e.g. conf/train_hubert_conv1dmlp_vicuna_lora.yaml)"
        )
    config = load_deepspeed_config(getattr(args, "deepspeed_config", None))
    ngpu = int(getattr(args, "ngpu", 0) or 0)
    if ngpu == 0:
        raise DeepSpeedConfigError("--use_deepspeed true needs GPUs: ESPnet's DeepSpeed trainer runs on CUDA (--ngpu > 1)")
    world = getattr(args, "dist_world_size", None) or int(os.environ.get("WORLD_SIZE", "1"))
    launcher = getattr(args, "dist_launcher", None)
    if ngpu < 2 and world < 2 and launcher is None:
        raise DeepSpeedConfigError(
            f"--use_deepspeed true with --ngpu {ngpu} on one node: ESPnet uses DeepSpeed only for distributed "
            "training and would silently fall back to its plain Trainer; use --ngpu > 1 (or several nodes)"
        )
    path = args.deepspeed_config
    if _enabled(config.get("bf16")) or _enabled(config.get("fp16")):
        raise DeepSpeedConfigError(
            f"{path}: native bf16/fp16 casts all weights to 16 bit, but the speech encoder computes its waveform "
            'front-end in float32; use "torch_autocast": {"enabled": true, "dtype": "bfloat16"} instead'
        )
    if _enabled(config.get("torch_autocast")):
        llm_dtype = (getattr(args, "llm_conf", None) or {}).get("weight_dtype", "float32")
        if llm_dtype != "float32":
            raise DeepSpeedConfigError(
                f"{path}: torch_autocast needs float32 weights, but llm_conf.weight_dtype is {llm_dtype}"
            )
    stage = int((config.get("zero_optimization") or {}).get("stage", 0))
    if stage > 2:
        raise DeepSpeedConfigError(
            f"{path}: ZeRO stage {stage} checkpoints hold no full weights, which ESPnet's checkpoint averaging "
            "(stage 10) reads from checkpoint_<epoch>/<epoch>/mp_rank_00_model_states.pt; use stage 2"
        )
    logger.info(f"DeepSpeed: {path} (ZeRO stage {stage})")
