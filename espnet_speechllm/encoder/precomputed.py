"""Frozen-encoder outputs read from disk instead of recomputed every epoch (``encoder: precomputed``).

A frozen encoder gives the same outputs in every epoch, yet the loop recomputes them (its forward, and the
waveform reading and normalization) for every batch. ``espnet_speechllm.bin.dump_encoder_feats`` runs the
encoder once over a data dir and writes kaldiio ark/scp; training then reads ``feats.scp,speech,kaldi_ark`` with

    encoder: precomputed
    encoder_conf:
        source: hubert                          # the encoder that produced the features ...
        source_conf: {model_dir: exp/pretrained/encoder, finetune: frozen}   # ... and its conf

Decoding reads audio: the inference tool swaps the source encoder back in (:func:`restore_source_encoder`), so a
model trained on features decodes exactly like one trained with the frozen encoder in the loop.
"""
import hashlib
import json
import logging
import os
from typing import Any, Dict, Optional, Tuple

import torch
from transformers import AutoConfig

from espnet_speechllm import registry
from espnet_speechllm.encoder.abs_encoder import AbsEncoder
from espnet_speechllm.utils.local_dir import local_model_dir

logger = logging.getLogger(__name__)


def dumped_encoder(name: str, conf: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    """``(name, conf)`` of the encoder whose outputs are dumped for a config's ``encoder``/``encoder_conf``: a
    precomputed encoder's source, else the encoder itself. A ValueError unless it is a frozen audio encoder read
    from a model_dir (a trained encoder's outputs change during training)."""
    if name == registry.PRECOMPUTED:
        name, conf = conf.get("source", registry.audio_encoder_choices.default), conf.get("source_conf")
    conf = dict(conf or {})
    if name not in registry.audio_encoder_choices.classes:
        raise ValueError(f"source encoder {name!r}: choose one of {sorted(registry.audio_encoder_choices.classes)}")
    if conf.get("finetune", "frozen") != "frozen":
        raise ValueError(
            f"source encoder finetune={conf['finetune']!r}: only a frozen encoder's outputs can be "
            "dumped (its outputs change during training otherwise); use the encoder itself"
        )
    if "model_dir" not in conf:
        raise ValueError("the source encoder's model_dir is required (the encoder that made the features)")
    return name, conf


ENCODER_OUTPUTS, FRONTEND_OUTPUTS = "encoder_outputs", "frontend_outputs"


def dumped_features(name: str, conf: Optional[Dict[str, Any]]) -> Optional[str]:
    """What stage 8 dumps for a config's ``encoder``/``encoder_conf``: a frozen encoder's outputs
    (``encoder: precomputed``), its waveform CNN's outputs (``encoder_conf.precomputed_frontend``), or nothing."""
    if name == registry.PRECOMPUTED:
        return ENCODER_OUTPUTS
    return FRONTEND_OUTPUTS if (conf or {}).get("precomputed_frontend") else None


# The encoder_conf keys that decide the waveform CNN's outputs (LoRA and the other fine-tuning keys do not).
FRONTEND_KEYS = ("model_dir", "hf_config", "config_overrides", "normalize_waveform", "use_attention_mask")


def frontend_settings(name: str, conf: Dict[str, Any]) -> Dict[str, Any]:
    """What decides a dump of the waveform CNN's outputs: every config that shares these shares the dump."""
    settings = {"encoder": name, **{k: conf[k] for k in FRONTEND_KEYS if conf.get(k) is not None}}
    if "model_dir" in settings:
        settings["model_dir"] = os.path.abspath(settings["model_dir"])
    return settings


def dump_dir_name(train_config: str, name: str, conf: Dict[str, Any]) -> Optional[str]:
    """The recipe's dump dir (under its dump dir) for a config: ``encoder_feats/<config name>`` for encoder outputs;
    ``frontend_feats/<model dir name>-<hash of the frontend settings>`` for CNN outputs, shared by every config
    with the same encoder (an ablation's variants dump it once); None when nothing is dumped."""
    kind = dumped_features(name, conf)
    if kind == ENCODER_OUTPUTS:
        return f"encoder_feats/{os.path.splitext(os.path.basename(train_config))[0]}"
    if kind == FRONTEND_OUTPUTS:
        settings = frontend_settings(name, conf)
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]
        return f"frontend_feats/{os.path.basename(settings.get('model_dir', name).rstrip('/'))}-{digest}"
    return None


class PrecomputedEncoder(AbsEncoder):
    """(B, T, D) dumped encoder outputs -> the same, checked against the source encoder's width."""

    def __init__(self, source: str = registry.audio_encoder_choices.default,
                 source_conf: Optional[Dict[str, Any]] = None):
        super().__init__()
        self.source, self.source_conf = dumped_encoder(source, dict(source_conf or {}))
        self.finetune = "frozen"
        model_dir = local_model_dir(self.source_conf["model_dir"], "the source encoder's model_dir")
        config = AutoConfig.from_pretrained(model_dir, **(self.source_conf.get("config_overrides") or {}))
        self._output_size = config.hidden_size

    def output_size(self) -> int:
        return self._output_size

    def build_source(self) -> AbsEncoder:
        """The frozen encoder that produced the features, for decoding from audio."""
        return registry.build_encoder(self.source, self.source_conf)

    def audio_input(self) -> AbsEncoder:
        return self.build_source()

    def base_model_dir(self) -> Optional[str]:
        return self.source_conf["model_dir"]  # the features, and so the adapter, are the source encoder's

    def forward(self, feats: torch.Tensor, feats_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if feats.dim() != 3 or feats.size(-1) != self._output_size:
            raise ValueError(
                f"encoder: precomputed expects (batch, frames, {self._output_size}) features from "
                f"espnet_speechllm.bin.dump_encoder_feats (data type feats.scp,speech,kaldi_ark); got shape "
                f"{tuple(feats.shape)}. Waveforms need the encoder itself (encoder: {self.source})."
            )
        return feats, feats_lengths


def restore_source_encoder(model: torch.nn.Module) -> torch.nn.Module:
    """A model trained on dumped features (encoder outputs, or its waveform CNN's) reads audio again."""
    device = next(model.parameters()).device
    if isinstance(model.encoder, PrecomputedEncoder):
        logger.info(f"encoder: precomputed -> running its source encoder ({model.encoder.source}) on audio")
    model.encoder = model.encoder.audio_input().to(device)
    return model
