"""Write the LoRA weights of a SpeechLLM checkpoint as standard PEFT adapter dirs.

Our sides carry LoRA injected in place (``...q_proj.lora_A.default.weight`` under ``encoder.model.`` or
``llm.model.``); PEFT's on-disk format names them ``base_model.model.<path>.lora_A.weight`` relative to the
base HF model, next to an ``adapter_config.json``.
"""
from pathlib import Path
from typing import Dict

import torch
from safetensors.torch import save_file

from espnet_speechllm.finetune import build_lora_config

SIDES = {"encoder": "encoder_conf", "llm": "llm_conf"}


def peft_state_dict(state: Dict[str, torch.Tensor], side: str) -> Dict[str, torch.Tensor]:
    prefix = f"{side}.model."
    out = {}
    for key, value in state.items():
        if key.startswith(prefix) and ".lora_" in key:
            name = key[len(prefix):].replace(".default.", ".")
            out["base_model.model." + name] = value.contiguous()
    return out


def export_lora_adapters(state: Dict[str, torch.Tensor], config: dict, out_dir: Path) -> Dict[str, Path]:
    """Export every side whose scheme is ``lora``; returns {side: dir}."""
    written = {}
    for side, conf_key in SIDES.items():
        conf = config.get(conf_key) or {}
        if conf.get("finetune") != "lora":
            continue
        weights = peft_state_dict(state, side)
        if not weights:
            raise ValueError(f"{side} is configured with LoRA but the checkpoint holds no {side} LoRA weights")
        lora_config = build_lora_config(conf.get("lora_conf") or {}, conf_key)
        lora_config.base_model_name_or_path = conf.get("model_dir")
        target = out_dir / side
        target.mkdir(parents=True, exist_ok=True)
        lora_config.save_pretrained(str(target))
        save_file(weights, str(target / "adapter_model.safetensors"))
        written[side] = target
    return written
