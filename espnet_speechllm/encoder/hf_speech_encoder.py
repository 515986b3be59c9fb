"""Self-supervised speech encoder from a local HF-format dir (HuBERT; WavLM / wav2vec2 load the same way).

Paper Sec. 3: ``hubert-large-ll60k`` whose last layer feeds the adapter. The encoder is loaded with
``AutoModel.from_pretrained(model_dir)`` -- a downloaded ``facebook/hubert-large-ll60k`` directory or one
made by ``espnet_speechllm.bin.make_tiny_models`` -- or built from an HF config dict (random weights).

Waveform preprocessing follows the checkpoint's own feature extractor when the dir has one
(``preprocessor_config.json``, read with ``AutoFeatureExtractor``): its ``do_normalize`` decides the per-utterance
zero-mean / unit-variance normalization and its ``return_attention_mask`` whether the padding mask is passed to
the model. hubert-large-ll60k's says true / true (layer-norm front-end); hubert-base-ls960 and wav2vec2-base say
false / false (group-norm front-end: such models are fed zero-padded waveforms without a mask, as HF does).
"""
import json
import logging
import os
from typing import Any, Dict, Optional, Tuple

import torch
import transformers
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

from espnet_speechllm.data.audio import SAMPLE_RATE
from espnet_speechllm.encoder.abs_encoder import AbsEncoder
from espnet_speechllm.finetune import FrozenWeightsFromDir, apply_finetune_scheme
from espnet_speechllm.utils.local_dir import local_model_dir

logger = logging.getLogger(__name__)
# Per-shard loading bars would flood training and decoding logs.
transformers.utils.logging.disable_progress_bar()


PREPROCESSOR_CONFIG = "preprocessor_config.json"


def read_preprocessing(model_dir: str) -> Optional[Dict[str, Any]]:
    """``{do_normalize, return_attention_mask, path}`` of the dir's feature extractor; None without the file.

    Values the file leaves out take the feature extractor class's defaults, as HF's pipeline would. A file that
    does not load, or a sampling rate other than 16 kHz, is a ValueError naming the file.
    """
    path = os.path.join(model_dir, PREPROCESSOR_CONFIG)
    if not os.path.isfile(path):
        return None
    try:
        extractor = AutoFeatureExtractor.from_pretrained(local_model_dir(model_dir, "encoder_conf.model_dir", None))
    except (OSError, ValueError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} does not load as an HF feature extractor: {e}") from e
    rate = getattr(extractor, "sampling_rate", SAMPLE_RATE)
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: sampling_rate {rate}, but the audio pipeline is {SAMPLE_RATE} Hz")
    return {"do_normalize": bool(getattr(extractor, "do_normalize", True)),
            "return_attention_mask": bool(getattr(extractor, "return_attention_mask", False)), "path": path}


def _resolve(option: str, yaml_value: Optional[bool], field: str, preprocessing: Optional[Dict[str, Any]],
             default: bool) -> bool:
    """The checkpoint's value when it has a preprocessor_config.json (a contradicting YAML value is warned
    about, naming both), else the YAML value, else ``default``."""
    if preprocessing is None:
        return default if yaml_value is None else bool(yaml_value)
    value = preprocessing[field]
    if yaml_value is not None and bool(yaml_value) != value:
        logger.warning(f"encoder_conf.{option}={yaml_value} contradicts {field}={value} in {preprocessing['path']}; "
                       f"using {field}={value}, the preprocessing the checkpoint was trained with")
    return value


def make_pad_mask_from_lengths(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, max_len) bool mask, True on valid positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def normalize_per_utterance(speech: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per row over its valid samples (HuBERT-large's ``do_normalize``); padding -> 0."""
    n = mask.sum(dim=1, keepdim=True).clamp(min=1)  # (B, 1)
    mean = (speech * mask).sum(dim=1, keepdim=True) / n
    var = (((speech - mean) * mask) ** 2).sum(dim=1, keepdim=True) / n
    return (speech - mean) / torch.sqrt(var + 1e-7) * mask


def receptive_field(conv_kernel, conv_stride) -> int:
    """Samples one output frame of a strided conv stack sees: the shortest input it takes (400 for the
    HuBERT / WavLM / wav2vec2 front-end, kernels 10,3,3,3,3,2,2 and strides 5,2,2,2,2,2,2)."""
    field, jump = 1, 1
    for k, s in zip(conv_kernel, conv_stride):
        field += (k - 1) * jump
        jump *= s
    return field


def min_input_samples(encoder: AbsEncoder) -> int:
    """The fewest waveform samples ``encoder`` can take."""
    return encoder.min_input_samples()


class HFSpeechEncoder(FrozenWeightsFromDir, AbsEncoder):
    """Waveform (B, S) -> hidden states (B, T, D) and frame lengths, honouring padding.

    Args:
        model_dir: local HF dir (config.json + weights). Either this or ``hf_config``.
        hf_config: dict for ``AutoConfig.for_model`` (needs ``model_type``), random init.
        config_overrides: HF config fields to override after loading (e.g. ``layerdrop: 0.0``).
        finetune: ``frozen | lora | full`` (paper Sec. 2.1).
        lora_conf: see ``espnet_speechllm.finetune.LORA_KEYS``.
        freeze_feature_extractor: keep the CNN waveform front-end frozen under ``full`` (common practice;
            it is also what fairseq/HF fine-tuning recipes do).
        normalize_waveform: zero-mean / unit-variance per utterance over its valid samples (``do_normalize``).
            A model dir's ``preprocessor_config.json`` decides; without one, None means True (HuBERT-large).
        use_attention_mask: pass the padding mask to the model (``return_attention_mask``). A model dir's
            ``preprocessor_config.json`` decides; without one, None means: for layer-norm front-ends only.
        output_layer: hidden layer to return (None = last; paper uses the last).
        precomputed_frontend: read the outputs of the frozen waveform CNN, dumped once by
            ``espnet_speechllm.bin.dump_encoder_feats`` (stage 8), instead of audio; the transformer layers still
            run, and fine-tune, in the loop. The CNN is most of a CPU step and a frozen CNN gives the same
            outputs every epoch, so this changes the cost, not the model. Decoding reads audio
            (:meth:`audio_input`). Needs a frozen CNN and a layer-norm front-end (a group-norm one normalizes
            over the padded batch, so its outputs depend on the batch).
    """

    def __init__(
        self,
        model_dir: Optional[str] = None,
        hf_config: Optional[Dict[str, Any]] = None,
        config_overrides: Optional[Dict[str, Any]] = None,
        finetune: str = "frozen",
        lora_conf: Optional[Dict[str, Any]] = None,
        freeze_feature_extractor: bool = True,
        normalize_waveform: Optional[bool] = None,
        use_attention_mask: Optional[bool] = None,
        output_layer: Optional[int] = None,
        precomputed_frontend: bool = False,
    ):
        super().__init__()
        if (model_dir is None) == (hf_config is None):
            raise ValueError("encoder_conf: give exactly one of model_dir (local HF dir) or hf_config")
        overrides = dict(config_overrides or {})
        # Frozen weights that came from a dir are reloaded from it, so checkpoints may leave them out.
        self.weights_from_dir = model_dir is not None
        self.model_dir = model_dir
        if model_dir is not None:
            config = AutoConfig.from_pretrained(local_model_dir(model_dir, "encoder_conf.model_dir"), **overrides)
            self.model = AutoModel.from_pretrained(model_dir, config=config)
        else:
            hf_config = dict(hf_config)
            model_type = hf_config.pop("model_type", None)
            if model_type is None:
                raise ValueError("encoder_conf.hf_config needs model_type (e.g. hubert)")
            config = AutoConfig.for_model(model_type, **hf_config, **overrides)
            self.model = AutoModel.from_config(config)
        if not hasattr(self.model, "_get_feat_extract_output_lengths"):
            raise ValueError(f"encoder model_type={config.model_type!r} is not a waveform SSL encoder")
        preprocessing = read_preprocessing(model_dir) if model_dir is not None else None
        self.normalize_waveform = _resolve("normalize_waveform", normalize_waveform, "do_normalize", preprocessing,
                                           default=True)
        # Without a preprocessor config: a mask only for layer-normalized front-ends (HF's rule for its base models).
        self.uses_attention_mask = _resolve("use_attention_mask", use_attention_mask, "return_attention_mask",
                                            preprocessing,
                                            default=getattr(config, "feat_extract_norm", "layer") == "layer")
        self.finetune = finetune
        self.output_layer = output_layer
        self.model = apply_finetune_scheme(self.model, finetune, lora_conf, where="encoder_conf")
        if finetune != "full" or freeze_feature_extractor:
            # HF's front-end marks its input as requiring grad unless told it is frozen, which makes
            # backward run through the whole conv stack for nothing.
            self.model.feature_extractor._freeze_parameters()
        self._output_size = config.hidden_size
        self.precomputed_frontend = bool(precomputed_frontend)
        if self.precomputed_frontend:
            if finetune == "full" and not freeze_feature_extractor:
                raise ValueError("encoder_conf.precomputed_frontend needs a frozen waveform CNN, but finetune=full "
                                 "with freeze_feature_extractor=false trains it")
            if not self.uses_attention_mask:
                raise ValueError("encoder_conf.precomputed_frontend needs a layer-norm front-end (one that takes "
                                 f"an attention mask); {config.model_type} here normalizes over the padded batch")
            if getattr(config, "add_adapter", False):
                raise ValueError("encoder_conf.precomputed_frontend: encoders with add_adapter are not supported")

    def frontend_size(self) -> int:
        """C, the width of the waveform CNN's outputs (what ``precomputed_frontend`` reads)."""
        return self.model.config.conv_dim[-1]

    def output_size(self) -> int:
        return self._output_size

    def min_input_samples(self) -> int:
        config = self.model.config
        return receptive_field(config.conv_kernel, config.conv_stride)

    def train(self, mode: bool = True):
        # A frozen encoder stays in eval mode: no dropout, layerdrop or time masking on a model we do
        # not update (the adapter must see what inference will see).
        super().train(mode)
        if self.finetune == "frozen":
            self.model.eval()
        return self

    def audio_input(self) -> "HFSpeechEncoder":
        self.precomputed_frontend = False
        return self

    def _base_model(self) -> torch.nn.Module:
        """The HF model under a PEFT wrapper (LoRA layers are injected into its modules)."""
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def _prepare_waveform(self, speech: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        speech = speech.float()
        return normalize_per_utterance(speech, mask) if self.normalize_waveform else speech * mask

    @torch.no_grad()
    def frontend(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, S) waveforms -> the frozen waveform CNN's outputs (B, T, C) and frame lengths (what
        ``precomputed_frontend`` reads). A frame depends only on its own samples, so batching does not change it."""
        mask = make_pad_mask_from_lengths(speech_lengths, speech.size(1))
        feats = self._base_model().feature_extractor(self._prepare_waveform(speech, mask)).transpose(1, 2)
        lengths = self.model._get_feat_extract_output_lengths(speech_lengths).long().clamp(max=feats.size(1))
        return feats, lengths

    def _forward_from_frontend(self, feats: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The rest of the HF model's forward (feature projection, time masking, transformer) on CNN outputs."""
        if feats.dim() != 3 or feats.size(-1) != self.frontend_size():
            raise ValueError(
                f"encoder_conf.precomputed_frontend expects (batch, frames, {self.frontend_size()}) waveform-CNN "
                f"outputs dumped by espnet_speechllm.bin.dump_encoder_feats; got shape {tuple(feats.shape)}")
        base = self._base_model()
        frame_mask = make_pad_mask_from_lengths(lengths, feats.size(1))  # bool, as HF makes it from a sample mask
        projected = base.feature_projection(feats.float())
        hidden = projected[0] if isinstance(projected, tuple) else projected  # wav2vec2 / WavLM: (hidden, feats)
        hidden = base._mask_hidden_states(hidden)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.finetune != "frozen"):
            out = base.encoder(hidden, attention_mask=frame_mask, output_hidden_states=self.output_layer is not None)
        hidden = out.last_hidden_state if self.output_layer is None else out.hidden_states[self.output_layer]
        return hidden, lengths

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.precomputed_frontend:
            return self._forward_from_frontend(speech, speech_lengths)
        mask = make_pad_mask_from_lengths(speech_lengths, speech.size(1))  # (B, S)
        speech = self._prepare_waveform(speech, mask)
        attention_mask = mask.long() if self.uses_attention_mask else None
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.finetune != "frozen"):
            out = self.model(
                speech,
                attention_mask=attention_mask,
                output_hidden_states=self.output_layer is not None,
            )
        hidden = out.last_hidden_state if self.output_layer is None else out.hidden_states[self.output_layer]
        lengths = self.model._get_feat_extract_output_lengths(speech_lengths).long()  # (B,)
        lengths = lengths.clamp(max=hidden.size(1))
        return hidden, lengths  # (B, T, D), (B,)
