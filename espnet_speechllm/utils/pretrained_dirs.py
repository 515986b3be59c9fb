"""Is a local HF-format foundation-model dir complete? Configs, weight indexes and the tokenizer are read, no
weights are loaded; each problem is one message saying what to put where (the checks of stage 7, real models).
"""
import glob
import json
import logging
import os
from typing import List

logger = logging.getLogger(__name__)

ENCODER_TYPES = ("hubert", "wavlm", "wav2vec2")
# What from_pretrained loads, in its order of preference.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json",
                "pytorch_model.bin", "pytorch_model.bin.index.json")
SHARD_PATTERNS = ("*.safetensors", "pytorch_model*.bin")


def check_index(model_dir: str, index_name: str) -> List[str]:
    """One problem per shard that the index lists and the dir lacks (shards are not opened: empty ones pass)."""
    path = os.path.join(model_dir, index_name)
    try:
        with open(path, encoding="utf-8") as f:
            weight_map = json.load(f).get("weight_map")
    except (OSError, ValueError, AttributeError) as e:
        return [f"{path}: not a weights index ({type(e).__name__}: {e})"]
    if not isinstance(weight_map, dict) or not weight_map:
        return [f"{path}: no weight_map (expected {{parameter name: shard file}})"]
    shards = sorted(set(weight_map.values()))
    return [f"{model_dir}: shard {shard} listed in {index_name} is missing ({len(shards)} shards in all)"
            for shard in shards if not os.path.isfile(os.path.join(model_dir, shard))]


def check_weights(model_dir: str) -> List[str]:
    """Problems of the weights ``from_pretrained`` would load (the first of ``WEIGHT_FILES`` present)."""
    for name in WEIGHT_FILES:
        if os.path.isfile(os.path.join(model_dir, name)):
            return check_index(model_dir, name) if name.endswith(".index.json") else []
    shards = sorted(os.path.basename(p) for pattern in SHARD_PATTERNS
                    for p in glob.glob(os.path.join(model_dir, pattern)))
    if shards:
        return [f"{model_dir}: weight shards ({', '.join(shards[:3])}, ...) without model.safetensors.index.json or "
                "pytorch_model.bin.index.json: copy the index of the download too"]
    return [f"{model_dir}: no weights ({' or '.join(WEIGHT_FILES)})"]


def check_dir(model_dir: str, what: str, example: str) -> List[str]:
    """Problems of any model dir: set, present, with config.json and complete weights."""
    if not model_dir:
        return [f"{what} dir is not set: set it in db.sh (e.g. a local copy of {example})"]
    if not os.path.isdir(model_dir):
        return [f"{what} dir {model_dir!r} does not exist: put a local HF-format copy of {example} there"]
    problems = []
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        problems.append(f"{model_dir}: no config.json (expected an HF-format copy of {example})")
    problems += check_weights(model_dir)
    return problems


def check_encoder(encoder_dir: str) -> List[str]:
    """Problems of the speech-encoder dir, its model type and preprocessor config included."""
    problems = check_dir(encoder_dir, "encoder", "facebook/hubert-large-ll60k")
    if not problems:
        with open(os.path.join(encoder_dir, "config.json")) as f:
            model_type = json.load(f).get("model_type")
        if model_type not in ENCODER_TYPES:
            problems.append(f"{encoder_dir}: model_type={model_type!r}, expected one of {ENCODER_TYPES}")
    if not problems:
        from espnet_speechllm.encoder.hf_speech_encoder import PREPROCESSOR_CONFIG, read_preprocessing

        try:
            preprocessing = read_preprocessing(encoder_dir)
        except ValueError as e:
            return [str(e)]
        if preprocessing is None:
            logger.warning(f"{encoder_dir}: no {PREPROCESSOR_CONFIG}; waveform normalization and the attention mask "
                           "follow encoder_conf (normalize_waveform, use_attention_mask) or their defaults")
        else:
            logger.info(f"{encoder_dir}: do_normalize={preprocessing['do_normalize']}, "
                        f"return_attention_mask={preprocessing['return_attention_mask']} ({PREPROCESSOR_CONFIG})")
    return problems


def check_llm(llm_dir: str) -> List[str]:
    """Problems of the LLM dir, its tokenizer (which must load) included."""
    problems = check_dir(llm_dir, "LLM", "lmsys/vicuna-7b-v1.5")
    if problems:
        return problems
    if not any(os.path.isfile(os.path.join(llm_dir, n)) for n in ("tokenizer.model", "tokenizer.json")):
        return [f"{llm_dir}: no tokenizer (tokenizer.model or tokenizer.json)"]
    from espnet_speechllm.llm.hf_causal_lm import load_tokenizer

    try:
        load_tokenizer(llm_dir)
    except Exception as e:  # report any tokenizer failure as a problem of that dir
        problems.append(f"{llm_dir}: tokenizer does not load ({type(e).__name__}: {e})")
    return problems
