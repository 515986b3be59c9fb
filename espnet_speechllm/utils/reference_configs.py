"""Architecture configs of the paper's foundation models (paper Sec. 3), for meta-device checks and
benchmarks with random weights when the real checkpoints are not on disk.

Values are those of the public ``config.json`` of facebook/hubert-large-ll60k and lmsys/vicuna-7b-v1.5.
"""
from transformers import HubertConfig, LlamaConfig

HUBERT_LARGE_LL60K = dict(
    hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
    conv_dim=[512] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2], conv_bias=True,
    feat_extract_norm="layer", do_stable_layer_norm=True, num_conv_pos_embeddings=128,
    num_conv_pos_embedding_groups=16, hidden_act="gelu", layer_norm_eps=1e-5,
)

VICUNA_7B_V1_5 = dict(
    hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
    num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096, rms_norm_eps=1e-5,
    bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
)


def hubert_large_config(**overrides) -> HubertConfig:
    return HubertConfig(**{**HUBERT_LARGE_LL60K, **overrides})


def vicuna_7b_config(**overrides) -> LlamaConfig:
    return LlamaConfig(**{**VICUNA_7B_V1_5, **overrides})
