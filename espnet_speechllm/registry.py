"""Component registry: the class each name of a training YAML builds, and the one way to build it.

    encoder: hubert | wavlm | wav2vec2    AbsEncoder reading audio (one HF wrapper serves every waveform SSL model;
                                          the names document what the dir holds)
             precomputed                  reads the dumped outputs of one of those (encoder/precomputed.py builds
                                          its source through here; the task adds it to its --encoder choices)
    adapter: conv1d_mlp | dws_mlp | conv1d_transformer | linear    AbsAdapter
    llm:     hf_causal_lm                 AbsLLM

``tasks/speechllm.py`` and ``encoder/precomputed.py`` both build through this module, which imports neither.
:func:`train_encoder` says which encoder a training run uses, as ``speechllm_train`` reads it from the config and
the extra arguments (``espnet_speechllm.bin.which_encoder`` prints it for the recipe).
"""
import argparse
import inspect
from typing import Any, Dict, Sequence, Tuple, Type

import yaml
from espnet2.train.class_choices import ClassChoices
from espnet2.utils.nested_dict_action import NestedDictAction

from espnet_speechllm.adapter.abs_adapter import AbsAdapter
from espnet_speechllm.adapter.conv1d_mlp import Conv1dMLPAdapter
from espnet_speechllm.adapter.conv1d_transformer import Conv1dTransformerAdapter
from espnet_speechllm.adapter.dws_mlp import DwsMLPAdapter
from espnet_speechllm.adapter.linear import LinearAdapter
from espnet_speechllm.encoder.abs_encoder import AbsEncoder
from espnet_speechllm.encoder.hf_speech_encoder import HFSpeechEncoder
from espnet_speechllm.llm.abs_llm import AbsLLM
from espnet_speechllm.llm.hf_causal_lm import HFCausalLM

PRECOMPUTED = "precomputed"

audio_encoder_choices = ClassChoices(
    "encoder",
    classes=dict(hubert=HFSpeechEncoder, wavlm=HFSpeechEncoder, wav2vec2=HFSpeechEncoder),
    type_check=AbsEncoder,
    default="hubert",
)
adapter_choices = ClassChoices(
    "adapter",
    classes=dict(
        conv1d_mlp=Conv1dMLPAdapter,
        dws_mlp=DwsMLPAdapter,
        conv1d_transformer=Conv1dTransformerAdapter,
        linear=LinearAdapter,
    ),
    type_check=AbsAdapter,
    default="conv1d_mlp",
)
llm_choices = ClassChoices("llm", classes=dict(hf_causal_lm=HFCausalLM), type_check=AbsLLM, default="hf_causal_lm")


def build_component(cls: Type, conf: Dict[str, Any], where: str, **given):
    """Instantiate ``cls(**given, **conf)``; an unknown key in ``conf`` is a ValueError naming it."""
    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(conf) - set(params))
    if unknown:
        allowed = sorted(p for p in params if p not in ("self", *given))
        raise ValueError(f"{where}: unknown key(s) {unknown} for {cls.__name__}; allowed: {allowed}")
    clash = sorted(set(conf) & set(given))
    if clash:
        raise ValueError(f"{where}: {clash} are set by the task from the other components; remove them")
    return cls(**given, **conf)


def build_encoder(name: str, conf: Dict[str, Any]) -> AbsEncoder:
    """An encoder that reads audio (``precomputed`` is built by the task: it reads the dumped outputs of one)."""
    return build_component(audio_encoder_choices.get_class(name), conf, "encoder_conf")


def build_adapter(name: str, conf: Dict[str, Any], input_size: int, output_size: int) -> AbsAdapter:
    return build_component(adapter_choices.get_class(name), conf, "adapter_conf", input_size=input_size,
                           output_size=output_size)


def build_llm(name: str, conf: Dict[str, Any]) -> AbsLLM:
    return build_component(llm_choices.get_class(name), conf, "llm_conf")


def train_encoder(train_config: str, train_args: Sequence[str] = ()) -> Tuple[str, Dict[str, Any]]:
    """``(encoder, encoder_conf)`` of ``speechllm_train --config train_config *train_args``.

    As ESPnet's parser reads them: the YAML (any YAML style) gives the defaults, the arguments override them (the
    last ``--config`` wins; ``--encoder`` is case-folded; ``--encoder_conf`` takes ``{...}`` or ``key=value``).
    """
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--config")
    config_file = parser.parse_known_args(["--config", train_config, *train_args])[0].config
    with open(config_file, encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{config_file}: a training config is a YAML mapping, got {type(config).__name__}")
    parser.add_argument("--encoder", type=str.lower, default=config.get("encoder", audio_encoder_choices.default))
    parser.add_argument("--encoder_conf", action=NestedDictAction, default=config.get("encoder_conf") or {})
    args = parser.parse_known_args(train_args)[0]
    return args.encoder, dict(args.encoder_conf)
