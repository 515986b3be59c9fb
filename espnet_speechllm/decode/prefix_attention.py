"""Shared-prefix attention for beam search: the prefix KV is stored once per utterance, not once per beam.

In LLM-based ASR (Pham et al., arXiv 2406.17272, Sec. 2) the decoder prefix (prompt + speech adapter output, a few
hundred positions) is far longer than the transcript. With a plain KV cache every beam holds a copy of the prefix
keys/values, which beam search copies at every step (cache append and beam reorder) and attention reads once per
beam. Here each decoder layer keeps the prefix keys/values of each utterance once, ``(U, Hkv, T, d)``, plus the
generated tokens' keys/values per beam, ``(U*K, Hkv, t, d)``; a decoding step attends to both with one softmax
over their concatenated scores (the same result as attending to the concatenated keys). Only the short generated
part is reordered between steps. Keys/values are held and attended in float32 (exact copies of bf16/fp16 values),
as fused SDPA kernels accumulate in float32: in half precision the result stays that of SDPA, not that of an
eager attention that rounds the scores to half precision.

The attention is an HF ``AttentionInterface`` function, active while ``shared_prefix_attention(model)`` is
entered; the model is then called with ``use_cache=False`` and ``prefix_kv=...`` (HF passes extra keyword
arguments down to the attention function), so any HF decoder whose attention calls the configured attention
function with ``module.layer_idx`` works (Llama, Mistral without sliding window, Qwen2, ...).
"""
import contextlib

import torch
from transformers import AttentionInterface

ATTN_NAME = "speechllm_shared_prefix"


class SharedPrefixKV:
    """Keys/values of every layer: the prefix once per utterance, the generated tokens per beam.

    Args:
        prefix_keys: per layer ``(U, Hkv, T, d)`` (rotary already applied, as HF caches them); kept in float32.
        prefix_values: per layer ``(U, Hkv, T, d)``.
        prefix_mask: ``(U, T)`` 1 on prefix positions, 0 on left padding; None if there is no padding.
    """

    def __init__(self, prefix_keys: list[torch.Tensor], prefix_values: list[torch.Tensor],
                 prefix_mask: torch.Tensor | None):
        self.prefix_keys = [k.float() for k in prefix_keys]
        self.prefix_values = [v.float() for v in prefix_values]
        self.gen_keys: list[torch.Tensor | None] = [None] * len(prefix_keys)
        self.gen_values: list[torch.Tensor | None] = [None] * len(prefix_keys)
        self.prefix_bias = None
        if prefix_mask is not None:
            bias = torch.zeros(prefix_mask.shape, device=prefix_mask.device)  # (U, T)
            bias.masked_fill_(prefix_mask == 0, torch.finfo(torch.float32).min)
            self.prefix_bias = bias[:, None, None, :]  # (U, 1, 1, T)

    @classmethod
    def from_hf_cache(cls, cache, prefix_mask: torch.Tensor | None) -> "SharedPrefixKV":
        """Take the prefix keys/values of an HF ``DynamicCache`` filled by the prefill forward."""
        keys = [layer.keys for layer in cache.layers]
        values = [layer.values for layer in cache.layers]
        return cls(keys, values, prefix_mask)

    def select(self, utts: torch.Tensor | None, rows: torch.Tensor) -> None:
        """Keep the prefixes of utterances ``utts`` (None: all) and the generated KV of beam rows ``rows``."""
        if utts is not None:
            self.prefix_keys = [k.index_select(0, utts) for k in self.prefix_keys]
            self.prefix_values = [v.index_select(0, utts) for v in self.prefix_values]
            if self.prefix_bias is not None:
                self.prefix_bias = self.prefix_bias.index_select(0, utts)
        if self.gen_keys[0] is not None:
            self.gen_keys = [k.index_select(0, rows) for k in self.gen_keys]
            self.gen_values = [v.index_select(0, rows) for v in self.gen_values]

    def append(self, layer_idx: int, key: torch.Tensor, value: torch.Tensor):
        """Add the new token's (N, Hkv, 1, d) key/value of a layer; return that layer's generated KV (float32)."""
        key, value = key.float(), value.float()
        if self.gen_keys[layer_idx] is None:
            self.gen_keys[layer_idx], self.gen_values[layer_idx] = key, value
        else:
            self.gen_keys[layer_idx] = torch.cat((self.gen_keys[layer_idx], key), dim=2)  # (N, Hkv, t, d)
            self.gen_values[layer_idx] = torch.cat((self.gen_values[layer_idx], value), dim=2)
        return self.gen_keys[layer_idx], self.gen_values[layer_idx]


def shared_prefix_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    prefix_kv: SharedPrefixKV | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """One decoding step: query (N, H, 1, d) of N = U*K beams over the shared prefix and the beams' own tokens.

    ``key``/``value`` are the new token's (N, Hkv, 1, d); ``attention_mask`` is unused (the prefix padding is in
    ``prefix_kv``, the generated tokens are all visible). Returns (N, 1, H, d) like HF's attention functions.
    """
    if prefix_kv is None or query.shape[2] != 1:
        raise ValueError("shared-prefix attention runs single-token decoding steps with prefix_kv=SharedPrefixKV")
    gen_k, gen_v = prefix_kv.append(module.layer_idx, key, value)  # (N, Hkv, t, d)
    pre_k = prefix_kv.prefix_keys[module.layer_idx]  # (U, Hkv, T, d)
    pre_v = prefix_kv.prefix_values[module.layer_idx]
    num_rows, num_heads, _, head_dim = query.shape
    dtype = query.dtype
    num_utts, num_kv_heads, prefix_len, _ = pre_k.shape
    beam = num_rows // num_utts
    group = num_heads // num_kv_heads
    gen_len = gen_k.shape[2]
    if scaling is None:
        scaling = head_dim**-0.5

    query = query.float()
    # Prefix part: the K beams (and the G query heads of a KV head) of an utterance share its prefix keys.
    q_utt = query.reshape(num_utts, beam, num_kv_heads, group, head_dim).transpose(1, 2)  # (U, Hkv, K, G, d)
    q_utt = q_utt.reshape(num_utts, num_kv_heads, beam * group, head_dim)  # (U, Hkv, K*G, d)
    score_pre = torch.matmul(q_utt, pre_k.transpose(-1, -2)) * scaling  # (U, Hkv, K*G, T)
    if prefix_kv.prefix_bias is not None:
        score_pre = score_pre + prefix_kv.prefix_bias
    # Generated part: each beam its own keys.
    q_row = query.reshape(num_rows, num_kv_heads, group, head_dim)  # (N, Hkv, G, d)
    score_gen = torch.matmul(q_row, gen_k.transpose(-1, -2)) * scaling  # (N, Hkv, G, t)
    score_gen = score_gen.view(num_utts, beam, num_kv_heads, group, gen_len).transpose(1, 2)
    score_gen = score_gen.reshape(num_utts, num_kv_heads, beam * group, gen_len)  # (U, Hkv, K*G, t)

    probs = torch.softmax(torch.cat((score_pre, score_gen), dim=-1), dim=-1)  # (U, Hkv, K*G, T + t)
    out_pre = torch.matmul(probs[..., :prefix_len], pre_v)  # (U, Hkv, K*G, d)
    out_pre = out_pre.view(num_utts, num_kv_heads, beam, group, head_dim).transpose(1, 2)  # (U, K, Hkv, G, d)
    prob_gen = probs[..., prefix_len:].view(num_utts, num_kv_heads, beam, group, gen_len).transpose(1, 2)
    prob_gen = prob_gen.reshape(num_rows, num_kv_heads, group, gen_len)  # (N, Hkv, G, t)
    out = out_pre.reshape(num_rows, num_kv_heads, group, head_dim) + torch.matmul(prob_gen, gen_v)  # (N, Hkv, G, d)
    return out.reshape(num_rows, 1, num_heads, head_dim).to(dtype), None  # (N, 1, H, d)


AttentionInterface.register(ATTN_NAME, shared_prefix_attention_forward)


@contextlib.contextmanager
def shared_prefix_attention(model: torch.nn.Module):
    """Route the model's attention to ``shared_prefix_attention_forward`` inside the block (restored after)."""
    config = model.config
    previous = config._attn_implementation
    config._attn_implementation = ATTN_NAME
    try:
        yield
    finally:
        config._attn_implementation = previous


def supports_shared_prefix(model: torch.nn.Module) -> bool:
    """True for decoder-only HF LMs whose layers all use full (not sliding-window or linear) attention."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    if getattr(config, "sliding_window", None) is not None and getattr(config, "use_sliding_window", True):
        return False
    layer_types = getattr(config, "layer_types", None)
    return layer_types is None or all(t == "full_attention" for t in layer_types)
