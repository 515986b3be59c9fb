"""SpeechLLMTask: ESPnet ``AbsTask`` for encoder -> adapter -> LLM ASR, trained by ESPnet's ``Trainer``.

YAML layout (one file = one experiment):

    encoder: hubert            encoder_conf: {model_dir: ..., finetune: lora, lora_conf: {...}}
    adapter: conv1d_mlp        adapter_conf: {downsample_rate: 5, hidden_size: 2048}
    llm: hf_causal_lm          llm_conf: {model_dir: ..., finetune: lora, lora_conf: {...}, prompt_template: ...}
    matching_loss_conf: {weight: 1.0, mse_weight: 1.0, cos_weight: 1.0}
    text_case: keep

Note: ESPnet's generic ``--adapter``/``--adapter_conf`` options (its own LoRA/Houlsby fine-tuning of ESPnet
models) are replaced here by the paper's speech adapter; this task does its fine-tuning through
``encoder_conf.finetune`` / ``llm_conf.finetune``.
"""
import argparse
import json
import logging
import os
from typing import Any, Callable, Collection, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from espnet2.tasks.abs_task import AbsTask, optim_classes
from espnet2.train.class_choices import ClassChoices
from espnet2.train.trainer import Trainer
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str2bool

from espnet_speechllm.data.audio import register_audio_type
from espnet_speechllm.data.collate import SpeechLLMCollateFn
from espnet_speechllm.data.preprocess import TEXT_CASES, TranscriptTokenizer
from espnet_speechllm.data.transcript import register_transcript_type
from espnet_speechllm.encoder.abs_encoder import AbsEncoder
from espnet_speechllm.encoder.precomputed import PrecomputedEncoder
from espnet_speechllm.finetune import count_parameters
from espnet_speechllm.llm.hf_causal_lm import load_tokenizer
from espnet_speechllm.loss.adapter_ctc import ADAPTER_CTC_KEYS, AdapterCTCLoss
from espnet_speechllm.loss.matching import MATCHING_KEYS, MatchingLoss
from espnet_speechllm.model import BaseWeightsMismatchError, SpeechLLMModel
from espnet_speechllm.registry import (
    PRECOMPUTED,
    adapter_choices,
    audio_encoder_choices,
    build_adapter,
    build_component,
    build_llm,
    llm_choices,
)
from espnet_speechllm.utils import atomic_save
from espnet_speechllm.utils.deepspeed_support import check_deepspeed_args

logger = logging.getLogger(__name__)

register_audio_type()
register_transcript_type()

# The task's --encoder: the encoders that read audio, and one that reads their dumped outputs.
encoder_choices = ClassChoices(
    "encoder",
    classes={**audio_encoder_choices.classes, PRECOMPUTED: PrecomputedEncoder},
    type_check=AbsEncoder,
    default=audio_encoder_choices.default,
)


# The model's top-level modules: rows of the parameter report, keys of lr_multipliers.
MODULES = ("encoder", "adapter", "llm", "matching_loss")


def parameter_report(model: SpeechLLMModel) -> Dict[str, Any]:
    modules = {name: count_parameters(getattr(model, name)) for name in MODULES if getattr(model, name) is not None}
    return {**count_parameters(model), "modules": modules}


def log_parameter_report(report: Dict[str, Any]) -> None:
    lines = [f"{'module':<14}{'total':>16}{'trainable':>16}"]
    for name, c in report["modules"].items():
        lines.append(f"{name:<14}{c['total']:>16,}{c['trainable']:>16,}")
    lines.append(f"{'all':<14}{report['total']:>16,}{report['trainable']:>16,}")
    logger.info("Parameter report:\n" + "\n".join(lines))


class SpeechLLMTask(AbsTask):
    num_optimizers: int = 1
    class_choices_list = [encoder_choices, adapter_choices, llm_choices]
    trainer = Trainer

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        # Our speech adapter takes over the names of ESPnet's generic --adapter/--adapter_conf options.
        parser.conflict_handler = "resolve"
        group = parser.add_argument_group(description="Task related")
        group.add_argument(
            "--matching_loss_conf",
            action=NestedDictAction,
            default=dict(),
            help=f"Matching loss (paper Sec. 2.2): keys {list(MATCHING_KEYS)}; weight 0 (default) disables it",
        )
        group.add_argument(
            "--adapter_ctc_conf",
            action=NestedDictAction,
            default=dict(),
            help=f"CTC of the adapter frames against the LLM's embedding table (loss/adapter_ctc.py; not in the "
            f"paper): keys {list(ADAPTER_CTC_KEYS)}; weight 0 (default) disables it; blank_id defaults to the unk token",
        )
        group.add_argument(
            "--model_conf", action=NestedDictAction, default=dict(), help="SpeechLLMModel options (save_frozen_weights)"
        )
        group.add_argument(
            "--lr_multipliers", action=NestedDictAction, default=dict(),
            help="Learning-rate multiplier per module (encoder, adapter, llm, matching_loss), relative to "
            "optim_conf.lr; e.g. {adapter: 5.0}: the randomly initialised adapter learns faster than the LoRA weights",
        )
        group = parser.add_argument_group(description="Preprocess related")
        group.add_argument("--use_preprocessor", type=str2bool, default=True, help="Tokenize transcripts")
        group.add_argument(
            "--text_case", type=str, default="keep", choices=TEXT_CASES, help="Case folding of transcripts"
        )
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)
        return parser

    @classmethod
    def main(cls, args: Optional[argparse.Namespace] = None, cmd: Optional[Sequence[str]] = None):
        if args is None:
            args = cls.get_parser().parse_args(cmd)
        check_deepspeed_args(args)  # a clear error before any worker starts
        super().main(args=args)

    @classmethod
    def main_worker(cls, args: argparse.Namespace):
        atomic_save.install()  # checkpoints written whole or not at all; a full disk named (utils/atomic_save.py)
        super().main_worker(args)

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: torch.nn.Module) -> List[torch.optim.Optimizer]:
        multipliers = dict(getattr(args, "lr_multipliers", None) or {})
        if not multipliers:
            return super().build_optimizers(args, model)
        unknown = sorted(set(multipliers) - set(MODULES))
        if unknown:
            raise ValueError(f"lr_multipliers: unknown module(s) {unknown}; allowed: {list(MODULES)}")
        optim_class = optim_classes.get(args.optim)
        if optim_class is None:
            raise ValueError(f"optim must be one of {list(optim_classes)}: {args.optim}")
        lr = args.optim_conf.get("lr", 1e-3)
        groups = []
        for name in MODULES:
            module = getattr(model, name, None)
            params = [p for p in module.parameters() if p.requires_grad] if module is not None else []
            if params:
                groups.append({"params": params, "lr": lr * float(multipliers.get(name, 1.0)), "name": name})
        logger.info("optimizer parameter groups: " + ", ".join(f"{g['name']} lr {g['lr']:.2e}" for g in groups))
        return [optim_class(groups, **args.optim_conf)]

    @classmethod
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable[
        [Collection[Tuple[str, Dict[str, np.ndarray]]]], Tuple[List[str], Dict[str, torch.Tensor]]
    ]:
        return SpeechLLMCollateFn()

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> Optional[Callable]:
        if not args.use_preprocessor:
            return None
        model_dir = (args.llm_conf or {}).get("model_dir")
        if model_dir is None:
            raise ValueError("llm_conf.model_dir is required (the tokenizer is read from it)")
        return TranscriptTokenizer(load_tokenizer(model_dir), text_case=args.text_case)

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ("speech",) if inference else ("speech", "text")

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return ()

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> SpeechLLMModel:
        encoder = build_component(encoder_choices.get_class(args.encoder), args.encoder_conf, "encoder_conf")
        llm = build_llm(args.llm, args.llm_conf)
        adapter = build_adapter(args.adapter, args.adapter_conf, input_size=encoder.output_size(),
                                output_size=llm.hidden_size)
        weight, match_conf = loss_weight_and_conf(getattr(args, "matching_loss_conf", None), MATCHING_KEYS,
                                                  "matching_loss_conf")
        matching = MatchingLoss(llm.hidden_size, **match_conf) if weight > 0 else None
        adapter_ctc, ctc_weight = build_adapter_ctc(getattr(args, "adapter_ctc_conf", None), llm)
        model = build_component(
            SpeechLLMModel, getattr(args, "model_conf", None) or {}, "model_conf",
            encoder=encoder, adapter=adapter, llm=llm, matching_loss=matching, matching_weight=weight,
            adapter_ctc=adapter_ctc, adapter_ctc_weight=ctc_weight,
        )
        report = parameter_report(model)
        log_parameter_report(report)
        out_dir = getattr(args, "output_dir", None)
        if out_dir and not getattr(args, "collect_stats", False):
            os.makedirs(out_dir, exist_ok=True)
            with open(os.path.join(out_dir, "param_report.json"), "w") as f:
                json.dump(report, f, indent=2)
        return model

    @classmethod
    def build_model_from_file(cls, config_file, model_file=None, device: str = "cpu",
                              allow_base_weight_mismatch: bool = False):
        """Build from ``config.yaml`` and load ``model_file`` with ``torch.load(weights_only=True)``.

        Returns ``(model, args)`` like ESPnet's. Frozen pretrained weights come from the dirs in the config; a
        model file trained on other ones is refused unless ``allow_base_weight_mismatch`` (model.py).
        """
        import yaml

        with open(config_file, encoding="utf-8") as f:
            args = argparse.Namespace(**yaml.safe_load(f))
        args.output_dir = None  # never write into the exp dir while loading
        model = cls.build_model(args)
        if model_file is not None:
            state = torch.load(model_file, map_location="cpu", weights_only=True)
            model.allow_base_weight_mismatch |= allow_base_weight_mismatch
            try:
                model.load_state_dict(state, strict=True)
            except BaseWeightsMismatchError as e:
                raise BaseWeightsMismatchError(f"{model_file}: {e}") from None
        return model.to(device), args


def loss_weight_and_conf(conf: Optional[dict], keys: Sequence[str], name: str) -> Tuple[float, dict]:
    """An auxiliary loss's ``*_conf`` -> (its weight, 0 when absent; the other options). Unknown keys are errors."""
    conf = dict(conf or {})
    unknown = sorted(set(conf) - set(keys))
    if unknown:
        raise ValueError(f"{name}: unknown key(s) {unknown}; allowed: {list(keys)}")
    return float(conf.pop("weight", 0.0)), conf


def build_adapter_ctc(conf: Optional[dict], llm) -> Tuple[Optional[AdapterCTCLoss], float]:
    """``adapter_ctc_conf`` -> (loss module or None, weight). The blank defaults to the LLM tokenizer's unk."""
    weight, conf = loss_weight_and_conf(conf, ADAPTER_CTC_KEYS, "adapter_ctc_conf")
    if weight <= 0:
        return None, 0.0
    if conf.get("blank_id") is None:
        conf["blank_id"] = llm.tokenizer.unk_token_id
        if conf["blank_id"] is None:
            raise ValueError("adapter_ctc_conf: the LLM's tokenizer has no unk token; give blank_id")
    return AdapterCTCLoss(**conf), weight
