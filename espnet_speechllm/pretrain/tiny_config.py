"""The settings of the tiny foundation models (pretrain/tiny_models.py): ``DEFAULTS`` (sizes of the Llama LLM, its
tokenizer and the HuBERT encoder, and the pretraining steps) and their merge with a user YAML such as
egs2/synth_llm/asr1/conf/tiny_models.yaml."""
import copy
from typing import Optional

import yaml

from espnet_speechllm.llm.prompt import DEFAULT_TEMPLATE

DEFAULTS = {
    "seed": 0,
    "tokenizer": {"vocab_size": 384},
    "llm": {
        "hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 4, "max_position_embeddings": 1024, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
    },
    # The real HuBERT conv front-end (320x downsampling, 50 Hz frames) with narrow layers.
    "encoder": {
        "hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 2, "num_attention_heads": 4,
        "conv_dim": [64, 64, 64, 64, 64, 64, 64], "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
        "conv_stride": [5, 2, 2, 2, 2, 2, 2], "num_conv_pos_embeddings": 32, "num_conv_pos_embedding_groups": 4,
        "feat_extract_norm": "layer", "do_stable_layer_norm": True, "mask_time_prob": 0.0, "layerdrop": 0.0,
        # No dropout: CTC pretraining on a CPU budget underfits (greedy CER on training utterances equals the
        # held-out one), and dropout makes every step of stage 9's encoder dearer.
        "hidden_dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0, "feat_proj_dropout": 0.0,
        "final_dropout": 0.0,
    },
    "pretrain": {
        # LLM: sample kinds and their shares (pretrain/text_lm.py explains them).
        "llm_steps": 0, "llm_batch_size": 32, "llm_lr": 3.0e-3,
        "llm_mix": {"plain": 0.25, "copy": 0.25, "random_copy": 0.5}, "llm_copy_template": DEFAULT_TEMPLATE,
        "llm_max_repeat": 6, "llm_random_words": [3, 12], "llm_curriculum_steps": 0,
        "llm_heldout_sentences": 200,   # held out of the text pool: copy accuracy and perplexity
        # LLM phase 2 (llm_robust_steps > 0): copies whose prefix has fillers between the tokens and noisy
        # embeddings, the way an adapter's outputs look (pretrain/text_lm.py); its own lr, one-cycle again.
        "llm_robust_steps": 0, "llm_robust_lr": 1.0e-3, "llm_robust_max_blank": 3, "llm_robust_max_repeat": 3,
        "llm_robust_prefix_noise": 2.0,
        "llm_robust_clean_share": 0.0,  # share of phase-2 copies in phase 1's layout (keeps the plain copy skill)
        # Encoder: CTC on the LLM's tokens ("llm_tokens") or on characters ("char").
        "encoder_steps": 0, "encoder_batch_size": 8, "encoder_lr": 2.0e-3, "encoder_max_utts": 4000,
        "encoder_units": "llm_tokens", "encoder_speeds": [0.9, 1.0, 1.1], "encoder_noise_prob": 0.3,
        "encoder_freeze_conv_after": 0.25, "encoder_heldout_utts": 50,
        "encoder_token_steps": 0,       # then this many steps on the LLM's tokens (pretrain/tiny_encoder.py explains)
        "eval_every": 0,                # log copy accuracy / CER every N steps while training (0: at the end)
    },
}


def merge_config(user: dict) -> dict:
    """DEFAULTS updated by ``user``; unknown sections or keys are errors naming them."""
    config = copy.deepcopy(DEFAULTS)
    for section, values in (user or {}).items():
        if section not in config:
            raise ValueError(f"unknown section {section!r}; allowed: {sorted(config)}")
        if not isinstance(config[section], dict):
            config[section] = values
            continue
        unknown = sorted(set(values or {}) - set(config[section]))
        if unknown:
            raise ValueError(f"{section}: unknown key(s) {unknown}; allowed: {sorted(config[section])}")
        config[section].update(values or {})
    if config["pretrain"]["encoder_units"] not in ("char", "llm_tokens"):
        raise ValueError(f"pretrain.encoder_units must be char or llm_tokens, got {config['pretrain']['encoder_units']!r}")
    return config


def load_config(path: Optional[str]) -> dict:
    """DEFAULTS merged with the YAML at ``path`` (none: the defaults)."""
    user = {}
    if path:
        with open(path, encoding="utf-8") as f:
            user = yaml.safe_load(f) or {}
    return merge_config(user)
