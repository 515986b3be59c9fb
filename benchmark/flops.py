"""Analytic training FLOPs of the SpeechLLM model (HuBERT-style encoder -> Conv1dMLP -> Llama-style LLM).

Only matrix products are counted (linear layers, convolutions, attention score and value products): they are
what the matmul units execute; norms, activations, softmax and the optimizer are left out, as in the usual
MFU convention. One multiply-add is 2 FLOPs.

Forward of a linear layer on ``t`` rows: ``2·t·d_in·d_out``. Its backward has two products of the same size:
the input gradient (computed only when the input depends on a trainable weight, i.e. gradient has to flow
through it) and the weight gradient (computed only when the weight itself is trainable). So

    frozen weight, gradient flows through it     backward = 1 x forward   (input gradient only)
    frozen weight, nothing trainable below       backward = 0             (e.g. the layers under the LoRA span)
    trainable weight (full fine-tuning)          backward = 2 x forward   (the classic "6N" count)

An attention product ``A·B`` (no weights) costs 1 x forward in backward per operand that needs a gradient. A
LoRA branch ``B(A(x))`` of rank r adds ``2·t·r·(d_in + d_out)`` forward and, backward, the weight gradients of
A and B, the input gradient of B and -- when ``x`` needs a gradient -- the input gradient of A.

Whether a tensor needs a gradient is propagated through the network as autograd does: the encoder below its
lowest trainable layer needs none; the adapter is always trained, so every LLM product gets its input gradient
(over the whole spliced sequence: prompt, speech and transcript rows). The LM head runs only on the target
positions (transcript + EOS), as ``SpeechLLMModel.forward`` does.

Attention is counted over the full ``L x L`` score matrix (causal or not), the Megatron convention and what
``torch.utils.flop_counter`` counts for SDPA; flash kernels skip the masked half of causal attention, so on a GPU
the LLM attention share is slightly overstated (it is a few percent of the total at ASR sequence lengths).

Gradient checkpointing recomputes each LLM decoder layer's forward during backward (all but its last product,
``down_proj``: torch's non-reentrant checkpoint stops once the tensors saved for backward are back): reported
separately as ``recompute`` (hardware FLOPs), never part of the model FLOPs used for MFU.

``benchmark/train_throughput.py`` checks these formulas against ``torch.utils.flop_counter.FlopCounterMode`` on a
real forward + backward (``--check_flops``).
"""
import dataclasses
import math
from typing import Dict, Iterable, List, Sequence, Tuple

ENC_LINEARS = ("q", "k", "v", "o", "fc1", "fc2")
LLM_LINEARS = ("q", "k", "v", "o", "gate", "up", "down")
# HF module names of those linears
_HF_ENC = {"q": "attention.q_proj", "k": "attention.k_proj", "v": "attention.v_proj", "o": "attention.out_proj",
           "fc1": "feed_forward.intermediate_dense", "fc2": "feed_forward.output_dense"}
_HF_LLM = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj",
           "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}


@dataclasses.dataclass
class LinearState:
    """Trainability of one linear layer: its own weight, and the rank of a LoRA branch on it (0: none)."""

    trainable: bool = False
    lora_r: int = 0


@dataclasses.dataclass
class EncoderShape:
    conv_dim: List[int]
    conv_kernel: List[int]
    conv_stride: List[int]
    hidden: int
    intermediate: int
    pos_conv_kernel: int
    pos_conv_groups: int
    layers: List[Dict[str, LinearState]]
    conv_trainable: bool = False
    projection_trainable: bool = False
    pos_conv_trainable: bool = False
    # HF's feature encoder marks the waveform as requiring grad in training unless freeze_feature_encoder()
    # was called: autograd then runs input gradients through every layer below the trained span for nothing.
    waveform_requires_grad: bool = False

    def frames(self, samples: int) -> int:
        t = samples
        for k, s in zip(self.conv_kernel, self.conv_stride):
            t = (t - k) // s + 1
        return max(t, 0)


@dataclasses.dataclass
class AdapterShape:
    """Conv1dMLP: Conv1d(kernel = stride = k) into ``hidden``, Linear(hidden, hidden), Linear(hidden, out)."""

    downsample: int
    input_size: int
    hidden: int
    output_size: int


@dataclasses.dataclass
class LLMShape:
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    layers: List[Dict[str, LinearState]]
    lm_head_trainable: bool = False
    gradient_checkpointing: bool = False


@dataclasses.dataclass
class ModelShape:
    encoder: EncoderShape
    adapter: AdapterShape
    llm: LLMShape
    prompt_tokens: int  # [BOS] + prompt text before and after the speech slot
    matching_heads: int = 0  # 0: no matching loss


@dataclasses.dataclass
class Flops:
    """FLOPs of one training step, per component; ``bwd`` includes weight and input gradients."""

    fwd: Dict[str, float] = dataclasses.field(default_factory=dict)
    bwd: Dict[str, float] = dataclasses.field(default_factory=dict)
    recompute: float = 0.0  # gradient checkpointing: forward of checkpointed layers again
    wasted: float = 0.0  # gradients nobody needs (see EncoderShape.waveform_requires_grad)

    def add(self, part: str, fwd: float, bwd: float) -> None:
        self.fwd[part] = self.fwd.get(part, 0.0) + fwd
        self.bwd[part] = self.bwd.get(part, 0.0) + bwd

    def __iadd__(self, other: "Flops") -> "Flops":
        for part in set(other.fwd) | set(other.bwd):
            self.add(part, other.fwd.get(part, 0.0), other.bwd.get(part, 0.0))
        self.recompute += other.recompute
        self.wasted += other.wasted
        return self

    @property
    def model(self) -> float:
        """Model FLOPs (forward + backward, no recomputation): the numerator of MFU."""
        return sum(self.fwd.values()) + sum(self.bwd.values())

    @property
    def hardware(self) -> float:
        """What executes: model FLOPs + recomputation + unneeded gradients."""
        return self.model + self.recompute + self.wasted


# ------------------------------------------------------------------------------------------------ primitives
def _linear(t: float, d_in: int, d_out: int, x_grad: bool, state: LinearState) -> Tuple[float, float, bool]:
    """(forward, backward, output needs grad) of a linear layer (+ LoRA branch) on t rows."""
    fwd = 2.0 * t * d_in * d_out
    bwd = (fwd if x_grad else 0.0) + (fwd if state.trainable else 0.0)
    r = state.lora_r
    if r:
        fwd += 2.0 * t * r * (d_in + d_out)
        bwd += 2.0 * t * r * (d_in + d_out)  # weight gradients of A and B
        bwd += 2.0 * t * r * d_out  # input gradient of B
        bwd += 2.0 * t * d_in * r if x_grad else 0.0  # input gradient of A
    return fwd, bwd, x_grad or state.trainable or r > 0


def _product(flops: float, a_grad: bool, b_grad: bool) -> Tuple[float, float, bool]:
    """An activation-by-activation product (attention scores, attention-weighted values)."""
    return flops, flops * (int(a_grad) + int(b_grad)), a_grad or b_grad


# ------------------------------------------------------------------------------------------------ components
def encoder_flops(enc: EncoderShape, samples: int, batch: int = 1) -> Tuple[Flops, int, bool]:
    """FLOPs of ``batch`` utterances of ``samples`` samples each; returns (flops, frames, output needs grad)."""
    if enc.waveform_requires_grad:
        # what runs, minus what a waveform without requires_grad runs: the difference is wasted work
        needed, t, grad = encoder_flops(dataclasses.replace(enc, waveform_requires_grad=False), samples, batch)
        actual, _, _ = _encoder_flops(enc, samples, batch, True)
        needed.wasted += actual.model - needed.model
        return needed, t, grad
    return _encoder_flops(enc, samples, batch, False)


def _encoder_flops(enc: EncoderShape, samples: int, batch: int, grad: bool) -> Tuple[Flops, int, bool]:
    out = Flops()
    t, c_in = samples, 1
    for c_out, k, s in zip(enc.conv_dim, enc.conv_kernel, enc.conv_stride):
        t = (t - k) // s + 1
        f, b, grad = _linear(batch * t, c_in * k, c_out, grad, LinearState(enc.conv_trainable))
        out.add("encoder_cnn", f, b)
        c_in = c_out
    d = enc.hidden
    f, b, grad = _linear(batch * t, c_in, d, grad, LinearState(enc.projection_trainable))
    out.add("encoder_transformer", f, b)
    k = enc.pos_conv_kernel
    t_pos = t + 1 if k % 2 == 0 else t  # "same" padding of an even kernel yields one extra frame (then cut)
    f, b, pos_grad = _linear(batch * t_pos, (d // enc.pos_conv_groups) * k, d, grad,
                             LinearState(enc.pos_conv_trainable))
    out.add("encoder_transformer", f, b)
    grad = grad or pos_grad
    for layer in enc.layers:
        grad, fb = _transformer_layer(batch * t, t, d, d, enc.intermediate, d, grad, layer, ENC_LINEARS)
        out.add("encoder_transformer", *fb)
    return out, t, grad


def _transformer_layer(rows: float, seq: int, d: int, d_kv: int, d_ff: int, d_att: int, grad: bool,
                       layer: Dict[str, LinearState], names: Sequence[str]) -> Tuple[bool, Tuple[float, float]]:
    """One pre-norm transformer layer on ``rows`` = batch·seq rows; ``names`` picks the FFN kind
    (2 linears for HuBERT, gated 3 for Llama). Returns (output needs grad, (forward, backward))."""
    fwd = bwd = 0.0

    def acc(fb):
        nonlocal fwd, bwd
        fwd += fb[0]
        bwd += fb[1]
        return fb[2]

    q = acc(_linear(rows, d, d_att, grad, layer[names[0]]))
    k = acc(_linear(rows, d, d_kv, grad, layer[names[1]]))
    v = acc(_linear(rows, d, d_kv, grad, layer[names[2]]))
    s = acc(_product(2.0 * rows * seq * d_att, q, k))  # Q K^T over all heads
    o = acc(_product(2.0 * rows * seq * d_att, s, v))  # P V
    a = acc(_linear(rows, d_att, d, o, layer[names[3]]))
    h = grad or a
    if len(names) == 6:  # HuBERT: fc1 -> GELU -> fc2
        f1 = acc(_linear(rows, d, d_ff, h, layer[names[4]]))
        f2 = acc(_linear(rows, d_ff, d, f1, layer[names[5]]))
    else:  # Llama: down(silu(gate(x)) * up(x))
        g = acc(_linear(rows, d, d_ff, h, layer[names[4]]))
        u = acc(_linear(rows, d, d_ff, h, layer[names[5]]))
        f2 = acc(_linear(rows, d_ff, d, g or u, layer[names[6]]))
    return h or f2, (fwd, bwd)


def adapter_flops(ad: AdapterShape, frames: int, enc_grad: bool, batch: int = 1) -> Tuple[Flops, int]:
    out = Flops()
    t = math.ceil(frames / ad.downsample)
    rows = batch * t
    f, b, _ = _linear(rows, ad.input_size * ad.downsample, ad.hidden, enc_grad, LinearState(True))
    out.add("adapter", f, b)
    f2, b2, _ = _linear(rows, ad.hidden, ad.hidden, True, LinearState(True))
    f3, b3, _ = _linear(rows, ad.hidden, ad.output_size, True, LinearState(True))
    out.add("adapter", f2 + f3, b2 + b3)
    return out, t


def llm_flops(llm: LLMShape, seq: int, targets: int, batch: int = 1) -> Flops:
    """``batch`` rows of ``seq`` spliced tokens (input needs grad: the adapter is trained); the LM head on
    ``targets`` positions in all."""
    out = Flops()
    d_att = llm.heads * llm.head_dim
    d_kv = llm.kv_heads * llm.head_dim
    grad = True
    for layer in llm.layers:
        grad, (f, b) = _transformer_layer(batch * seq, seq, llm.hidden, d_kv, llm.intermediate, d_att, grad,
                                          layer, LLM_LINEARS)
        out.add("llm_layers", f, b)
        if llm.gradient_checkpointing:
            # torch's non-reentrant checkpoint stops recomputing once every tensor saved for backward is back:
            # the layer's last product (down_proj) is not redone.
            out.recompute += f - _linear(batch * seq, llm.intermediate, llm.hidden, True, layer["down"])[0]
    f, b, _ = _linear(targets, llm.hidden, llm.vocab, True, LinearState(llm.lm_head_trainable))
    out.add("llm_head", f, b)
    return out


def matching_flops(d: int, text: int, speech: int, batch: int = 1) -> Flops:
    """Cross-attention matching loss: text embeddings (detached) query the adapter outputs (need grad)."""
    out = Flops()
    trained = LinearState(True)
    fq, bq, _ = _linear(batch * text, d, d, False, trained)
    fkv, bkv, _ = _linear(batch * speech, d, 2 * d, True, trained)
    fs, bs, _ = _product(2.0 * batch * text * speech * d, True, True)
    fo, bo, _ = _product(2.0 * batch * text * speech * d, True, True)
    fp, bp, _ = _linear(batch * text, d, d, True, trained)
    out.add("matching", fq + fkv + fs + fo + fp, bq + bkv + bs + bo + bp)
    return out


# ------------------------------------------------------------------------------------------------ a batch
def step_flops(shape: ModelShape, samples: Sequence[int], text_tokens: Sequence[int], padded: bool = False) -> Flops:
    """Training FLOPs of one batch of utterances with ``samples`` waveform samples and ``text_tokens`` transcript
    tokens each. ``padded=False``: every utterance at its own length (the useful work, for MFU);
    ``padded=True``: what runs on a right-padded batch (to compare with a FLOP counter)."""
    total = Flops()
    if padded:
        b = len(samples)
        enc, frames, grad = encoder_flops(shape.encoder, max(samples), b)
        ad, t_pad = adapter_flops(shape.adapter, frames, grad, b)
        total += enc
        total += ad
        speech = [math.ceil(shape.encoder.frames(s) / shape.adapter.downsample) for s in samples]
        seq = max(shape.prompt_tokens + t + n + 1 for t, n in zip(speech, text_tokens))
        total += llm_flops(shape.llm, seq, sum(n + 1 for n in text_tokens), b)
        if shape.matching_heads and max(text_tokens) > 0:
            total += matching_flops(shape.llm.hidden, max(text_tokens), t_pad, b)
        return total
    for s, n in zip(samples, text_tokens):
        enc, frames, grad = encoder_flops(shape.encoder, s)
        ad, t = adapter_flops(shape.adapter, frames, grad)
        total += enc
        total += ad
        total += llm_flops(shape.llm, shape.prompt_tokens + t + n + 1, n + 1)
        if shape.matching_heads and n > 0:
            total += matching_flops(shape.llm.hidden, n, t)
    return total


# ------------------------------------------------------------------------------------------------ from a model
def _linear_state(module) -> LinearState:
    lora_a = getattr(module, "lora_A", None)
    r = 0
    if lora_a is not None and len(lora_a):
        r = sum(int(m.out_features) for m in lora_a.values())
    base = getattr(module, "base_layer", module)
    return LinearState(trainable=bool(base.weight.requires_grad), lora_r=r)


def _layer_states(layer, names: Dict[str, str]) -> Dict[str, LinearState]:
    return {short: _linear_state(layer.get_submodule(path)) for short, path in names.items()}


def _checkpointing(hf_model) -> bool:
    # transformers 5 renamed is_gradient_checkpointing (deprecated) to is_activation_checkpointing
    name = "is_activation_checkpointing" if hasattr(type(hf_model), "is_activation_checkpointing") \
        else "is_gradient_checkpointing"
    return bool(getattr(hf_model, name, False))


def describe_model(model) -> ModelShape:
    """Read the shapes and the trainable/LoRA state of a built ``SpeechLLMModel`` (HuBERT-style encoder,
    ``conv1d_mlp`` adapter, Llama-style LLM). Works on the meta device."""
    from espnet_speechllm.adapter.conv1d_mlp import Conv1dMLPAdapter

    hf_enc = model.encoder.model
    cfg = hf_enc.config
    if not isinstance(model.adapter, Conv1dMLPAdapter):
        raise NotImplementedError(f"FLOP formulas cover the conv1d_mlp adapter, not {type(model.adapter).__name__}")
    frozen_side = model.encoder.finetune == "frozen"  # runs under no_grad: no backward at all
    enc_layers = [_layer_states(layer, _HF_ENC) for layer in hf_enc.encoder.layers]
    if frozen_side:
        enc_layers = [{k: LinearState() for k in ENC_LINEARS} for _ in enc_layers]

    def trainable(module) -> bool:
        return not frozen_side and any(p.requires_grad for p in module.parameters())

    encoder = EncoderShape(
        conv_dim=list(cfg.conv_dim), conv_kernel=list(cfg.conv_kernel), conv_stride=list(cfg.conv_stride),
        hidden=cfg.hidden_size, intermediate=cfg.intermediate_size, pos_conv_kernel=cfg.num_conv_pos_embeddings,
        pos_conv_groups=cfg.num_conv_pos_embedding_groups, layers=enc_layers,
        conv_trainable=trainable(hf_enc.feature_extractor), projection_trainable=trainable(hf_enc.feature_projection),
        pos_conv_trainable=trainable(hf_enc.encoder.pos_conv_embed),
        waveform_requires_grad=not frozen_side and bool(getattr(hf_enc.feature_extractor, "_requires_grad", False)),
    )
    ad = model.adapter
    adapter = AdapterShape(downsample=ad.downsample_rate, input_size=ad.conv.in_channels,
                           hidden=ad.conv.out_channels, output_size=ad.mlp[-1].out_features)
    hf_llm = model.llm.model
    lcfg = hf_llm.config
    head_dim = getattr(lcfg, "head_dim", None) or lcfg.hidden_size // lcfg.num_attention_heads
    llm_layers = [_layer_states(layer, _HF_LLM) for layer in hf_llm.get_decoder().layers]
    llm = LLMShape(
        hidden=lcfg.hidden_size, intermediate=lcfg.intermediate_size, heads=lcfg.num_attention_heads,
        kv_heads=getattr(lcfg, "num_key_value_heads", None) or lcfg.num_attention_heads, head_dim=head_dim,
        vocab=hf_llm.get_output_embeddings().out_features, layers=llm_layers,
        lm_head_trainable=bool(hf_llm.get_output_embeddings().weight.requires_grad),
        gradient_checkpointing=_checkpointing(hf_llm),
    )
    prompt = len(model.llm.prompt.before_ids) + len(model.llm.prompt.after_ids)
    heads = model.matching_loss.attention.num_heads if model.matching_loss is not None else 0
    return ModelShape(encoder=encoder, adapter=adapter, llm=llm, prompt_tokens=prompt, matching_heads=heads)


def summarize(flops: Flops) -> List[Tuple[str, float, float]]:
    """[(component, forward, backward)] in a fixed order, for printing."""
    order = ("encoder_cnn", "encoder_transformer", "adapter", "llm_layers", "llm_head", "matching")
    return [(p, flops.fwd.get(p, 0.0), flops.bwd.get(p, 0.0)) for p in order if p in flops.fwd]


def audio_hours_factor(speed_perturb_factors: Iterable[float]) -> float:
    """Audio duration multiplier of sox speed perturbation: a copy at factor f lasts 1/f as long."""
    return sum(1.0 / f for f in speed_perturb_factors)
