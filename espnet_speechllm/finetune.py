"""Fine-tuning schemes for a pretrained module: ``frozen | lora | full`` (paper Sec. 2.1).

The scheme is chosen independently for the speech encoder and the LLM. LoRA comes from peft: a
``LoraConfig`` built from the YAML's ``lora_conf`` is injected in place, so the wrapped HF model keeps its
own forward and state-dict layout (LoRA weights appear as ``...q_proj.lora_A.default.weight``).
"""
import logging
from typing import Any, Dict, Optional, Set

import torch
from peft import LoraConfig, inject_adapter_in_model

logger = logging.getLogger(__name__)

SCHEMES = ("frozen", "lora", "full")

# Keys of ``lora_conf`` and their meaning; anything else is rejected by name.
LORA_KEYS = {
    "r": "rank",
    "alpha": "scaling numerator (scaling = alpha / r)",
    "dropout": "dropout on the LoRA branch input",
    "target_modules": "module-name suffixes to adapt, e.g. [q_proj, v_proj]",
    "layers": "layer indices to adapt (null = all)",
    "layers_pattern": "name of the ModuleList holding the layers (e.g. layers)",
}


def check_lora_keys(lora_conf: Dict[str, Any], where: str) -> None:
    unknown = set(lora_conf) - set(LORA_KEYS)
    if unknown:
        raise ValueError(
            f"{where}.lora_conf: unknown key(s) {sorted(unknown)}; allowed: {sorted(LORA_KEYS)}"
        )


def build_lora_config(lora_conf: Dict[str, Any], where: str) -> LoraConfig:
    check_lora_keys(lora_conf, where)
    if "target_modules" not in lora_conf:
        raise ValueError(f"{where}.lora_conf.target_modules is required (e.g. [q_proj, v_proj])")
    layers = lora_conf.get("layers")
    return LoraConfig(
        r=int(lora_conf.get("r", 8)),
        lora_alpha=float(lora_conf.get("alpha", 16)),
        lora_dropout=float(lora_conf.get("dropout", 0.0)),
        target_modules=list(lora_conf["target_modules"]),
        layers_to_transform=list(layers) if layers is not None else None,
        layers_pattern=lora_conf.get("layers_pattern", "layers") if layers is not None else None,
        bias="none",
    )


def apply_finetune_scheme(
    module: torch.nn.Module,
    scheme: str,
    lora_conf: Optional[Dict[str, Any]] = None,
    where: str = "module",
) -> torch.nn.Module:
    """Set ``requires_grad`` (and inject LoRA) on ``module`` according to ``scheme``; returns the module."""
    if scheme not in SCHEMES:
        raise ValueError(f"{where}.finetune={scheme!r}; choose one of {SCHEMES}")
    # A typo in lora_conf is reported even while the scheme does not use it (e.g. a frozen baseline).
    check_lora_keys(lora_conf or {}, where)
    if scheme == "full":
        module.requires_grad_(True)
        return module
    module.requires_grad_(False)
    if scheme == "lora":
        config = build_lora_config(lora_conf or {}, where)
        # inject_adapter_in_model marks only the LoRA weights trainable.
        module = inject_adapter_in_model(config, module)
        n_lora = sum(p.numel() for n, p in module.named_parameters() if "lora_" in n)
        if n_lora == 0:
            raise ValueError(
                f"{where}.lora_conf matched no module: target_modules={config.target_modules}, "
                f"layers={config.layers_to_transform}"
            )
    return module


def count_parameters(module: torch.nn.Module) -> Dict[str, int]:
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}


class FrozenWeightsFromDir:
    """For a component wrapping an HF model (``self.model``) loaded from ``self.model_dir`` (when
    ``self.weights_from_dir``): its frozen weights are reloaded from that dir, so checkpoints leave them out."""

    def reloadable_keys(self) -> Set[str]:
        if not self.weights_from_dir:
            return set()
        return {f"model.{n}" for n, p in self.model.named_parameters() if not p.requires_grad}

    def base_model_dir(self) -> Optional[str]:
        return self.model_dir if self.reloadable_keys() else None
