"""SpeechLLMModel on tiny real models: every adapter x fine-tuning scheme trains as its scheme says."""
import argparse
import copy
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from espnet_speechllm.adapter.linear import LinearAdapter
from espnet_speechllm.encoder.abs_encoder import AbsEncoder
from espnet_speechllm.llm.abs_llm import AbsLLM
from espnet_speechllm.llm.prompt import PromptTemplate
from espnet_speechllm.model import BaseWeightsMismatchError, SpeechLLMModel
from espnet_speechllm.tasks.speechllm import SpeechLLMTask

ADAPTERS = {
    "conv1d_mlp": dict(downsample_rate=2, hidden_size=64),
    "dws_mlp": dict(downsample_rate=2, hidden_size=64),
    "conv1d_transformer": dict(downsample_rate=2, hidden_size=64, num_layers=1, num_heads=4, ffn_size=128, dropout=0.0),
    "linear": dict(downsample_rate=2),
}
SCHEMES = ["frozen", "lora", "full"]


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    speech = torch.randn(3, 12000, generator=g)
    speech_lengths = torch.tensor([12000, 9000, 5000])
    text = torch.tensor([[5, 6, 7, 8], [9, 10, -1, -1], [-1, -1, -1, -1]])  # last one: empty transcript
    return speech, speech_lengths, text, torch.tensor([4, 2, 0])


def side_params(model, side):
    return {n: p for n, p in getattr(model, side).model.named_parameters()}


@pytest.mark.parametrize("adapter", list(ADAPTERS))
@pytest.mark.parametrize("enc_scheme", SCHEMES)
@pytest.mark.parametrize("llm_scheme", SCHEMES)
def test_schemes_train_what_they_say(tiny_models, make_model_args, adapter, enc_scheme, llm_scheme):
    torch.manual_seed(0)
    model = SpeechLLMTask.build_model(make_model_args(
        tiny_models, enc_scheme, llm_scheme, adapter, adapter_conf=ADAPTERS[adapter], matching_weight=0.5))
    model.train()
    before = copy.deepcopy(model.state_dict(keep_vars=False))
    before_all = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss, stats, weight = model(*batch())
    assert torch.isfinite(loss) and set(stats) >= {"loss", "loss_ce", "loss_match", "acc"} and int(weight) == 3
    loss.backward()
    opt.step()
    for side, scheme in (("encoder", enc_scheme), ("llm", llm_scheme)):
        for name, p in side_params(model, side).items():
            changed = not torch.equal(p.detach(), before_all[f"{side}.model.{name}"])
            if scheme == "frozen" or (scheme == "lora" and "lora_" not in name):
                assert p.grad is None and not changed, f"{side} {scheme}: {name} was updated"
            elif scheme == "lora" and "lora_B" in name:
                assert changed, f"{side}: LoRA weight {name} did not move"
        if scheme == "full":
            assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in side_params(model, side).values())
    assert all(p.grad is not None for p in model.adapter.parameters())
    del before


def test_matching_loss_gradients_stay_in_trainable_modules(tiny_models, make_model_args):
    """Only the matching term: gradients reach adapter, cross-attention and encoder LoRA; never the LLM."""
    model = SpeechLLMTask.build_model(make_model_args(tiny_models, "lora", "full", matching_weight=1.0))
    speech, speech_lengths, text, text_lengths = batch()
    emb, emb_lengths = model.encode_speech(speech, speech_lengths)
    out = model.matching_loss(emb, emb_lengths, model.llm.embed(text), text_lengths)
    out["loss"].backward()
    assert all(p.grad is None for p in model.llm.parameters()), "matching loss must not move the LLM"
    assert all(p.grad is not None for p in model.adapter.parameters())
    assert all(p.grad is not None for p in model.matching_loss.parameters() if p.requires_grad)
    enc = {n: p for n, p in model.encoder.named_parameters()}
    assert all(enc[n].grad is not None for n in enc if "lora_" in n)
    assert all(enc[n].grad is None for n in enc if "lora_" not in n)


def test_matching_loss_decreases_when_trained_alone(tiny_models, make_model_args):
    torch.manual_seed(0)
    model = SpeechLLMTask.build_model(make_model_args(tiny_models, "frozen", "frozen", matching_weight=1.0))
    speech, speech_lengths, text, text_lengths = batch()
    text_emb = model.llm.embed(text)
    params = list(model.adapter.parameters()) + list(model.matching_loss.parameters())
    opt = torch.optim.Adam(params, lr=3e-3)
    losses = []
    for _ in range(40):
        emb, emb_lengths = model.encode_speech(speech, speech_lengths)
        loss = model.matching_loss(emb, emb_lengths, text_emb, text_lengths)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


@pytest.mark.parametrize("adapter", list(ADAPTERS))
def test_padding_does_not_change_an_utterance_loss(tiny_models, make_model_args, adapter):
    """The loss of each utterance alone equals the batch loss weighted back (batch-vs-single equality)."""
    torch.manual_seed(0)
    model = SpeechLLMTask.build_model(make_model_args(
        tiny_models, "lora", "lora", adapter, adapter_conf=ADAPTERS[adapter], matching_weight=0.5))
    model.eval()
    speech, speech_lengths, text, text_lengths = batch()
    with torch.no_grad():
        _, stats, _ = model(speech, speech_lengths, text, text_lengths)
        n_targets = text_lengths + 1  # transcript + EOS
        singles = []
        for i in range(3):
            s = speech[i : i + 1, : speech_lengths[i]]
            t = text[i : i + 1, : max(int(text_lengths[i]), 1)]
            _, st, _ = model(s, speech_lengths[i : i + 1], t, text_lengths[i : i + 1])
            singles.append(st["loss_ce"])
    ce_from_singles = sum(float(c) * int(n) for c, n in zip(singles, n_targets)) / int(n_targets.sum())
    assert abs(float(stats["loss_ce"]) - ce_from_singles) < 1e-4


def test_checkpoint_keeps_only_what_training_changes(tiny_models, make_model_args, tmp_path):
    model = SpeechLLMTask.build_model(make_model_args(tiny_models, "lora", "lora", matching_weight=0.5))
    state = model.state_dict()
    assert not any(k.startswith("llm.model.") and "lora_" not in k for k in state), "frozen LLM weights saved"
    assert any("lora_" in k for k in state) and any(k.startswith("adapter.") for k in state)
    torch.save(state, tmp_path / "m.pth")
    fresh = SpeechLLMTask.build_model(make_model_args(tiny_models, "lora", "lora", matching_weight=0.5))
    fresh.load_state_dict(torch.load(tmp_path / "m.pth", weights_only=True))
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, state[k]), k
    del state["adapter.conv.weight"]
    with pytest.raises(RuntimeError, match="adapter.conv.weight"):
        fresh.load_state_dict(state)


def test_unknown_config_key_is_named(tiny_models, make_model_args):
    args = make_model_args(tiny_models, adapter_conf=dict(downsample_rate=2, hiden_size=64))
    with pytest.raises(ValueError, match="hiden_size"):
        SpeechLLMTask.build_model(args)
    args = make_model_args(tiny_models)
    args.encoder_conf["lora_conf"]["rank"] = 4
    with pytest.raises(ValueError, match="rank"):
        SpeechLLMTask.build_model(args)


def test_bf16_autocast_and_gradient_checkpointing(tiny_models, make_model_args):
    """The GPU recipe's settings (``--use_amp`` bf16 autocast, SDPA, LLM gradient checkpointing) on CPU."""
    args = make_model_args(tiny_models, "lora", "lora", matching_weight=0.5)
    args.llm_conf.update(gradient_checkpointing=True, attn_implementation="sdpa")
    model = SpeechLLMTask.build_model(args).train()
    assert model.llm.model.is_activation_checkpointing
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, stats, _ = model(*batch())
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for n, p in model.llm.named_parameters() if "lora_B" in n)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_step(tiny_models, make_model_args):
    model = SpeechLLMTask.build_model(make_model_args(tiny_models, "lora", "lora", matching_weight=0.5)).cuda()
    speech, speech_lengths, text, text_lengths = (t.cuda() for t in batch())
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss, _, _ = model(speech, speech_lengths, text, text_lengths)
    loss.backward()
    assert torch.isfinite(loss)


def _train_on_four_utterances(model, steps=80):
    """Four random waveforms, each with its own one-token transcript: only the audio tells them apart."""
    g = torch.Generator().manual_seed(3)
    speech = torch.randn(4, 8000, generator=g)
    lengths = torch.full((4,), 8000)
    text, text_lengths = torch.tensor([[11], [12], [13], [14]]), torch.ones(4, dtype=torch.long)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(steps):
        loss, _, _ = model(speech, lengths, text, text_lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        _, stats, _ = model(speech, lengths, text, text_lengths)
    return float(stats["acc"]), float(stats["acc_mismatched"])


def test_acc_mismatched_separates_listening_from_guessing(tiny_models, make_model_args):
    """acc_mismatched (speech swapped within the batch) is logged in eval mode only. A model that reads the
    audio loses accuracy when the speech is swapped; one whose adapter output carries no audio does not."""
    torch.manual_seed(0)
    listening = SpeechLLMTask.build_model(make_model_args(tiny_models, "frozen", "lora"))
    model_train_stats = listening(*batch())[1]
    assert "acc_mismatched" not in model_train_stats  # training batches pay nothing for it
    acc, acc_mismatched = _train_on_four_utterances(listening)
    assert acc == 1.0 and acc_mismatched <= 0.5 + 1e-6, (acc, acc_mismatched)  # EOS alone is still right

    torch.manual_seed(0)
    deaf = SpeechLLMTask.build_model(make_model_args(tiny_models, "frozen", "lora"))
    last = deaf.adapter.mlp[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    last.requires_grad_(False)  # adapter output is all zeros: the speech never reaches the LLM
    acc, acc_mismatched = _train_on_four_utterances(deaf)
    assert acc == acc_mismatched <= 0.75, (acc, acc_mismatched)


def test_lr_multipliers_make_parameter_groups(tiny_models, make_model_args):
    model = SpeechLLMTask.build_model(make_model_args(tiny_models, "lora", "lora", matching_weight=1.0))
    args = argparse.Namespace(optim="adamw", optim_conf={"lr": 1e-3, "weight_decay": 0.01},
                              lr_multipliers={"adapter": 3.0, "matching_loss": 2.0})
    (optim,) = SpeechLLMTask.build_optimizers(args, model)
    lrs = {g["name"]: g["lr"] for g in optim.param_groups}
    assert lrs == pytest.approx({"encoder": 1e-3, "adapter": 3e-3, "llm": 1e-3, "matching_loss": 2e-3})
    grouped = {id(p) for g in optim.param_groups for p in g["params"]}
    assert grouped == {id(p) for p in model.parameters() if p.requires_grad}  # every trainable weight, once
    assert all(g["weight_decay"] == 0.01 for g in optim.param_groups)
    args.lr_multipliers = {"adaptor": 3.0}
    with pytest.raises(ValueError, match="unknown module.*adaptor"):
        SpeechLLMTask.build_optimizers(args, model)


class _FrameEncoder(AbsEncoder):
    """Waveform -> 10-sample frames -> 4 dims: no HF model behind it."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(10, 4)

    def output_size(self):
        return 4

    def forward(self, speech, speech_lengths):
        return self.proj(speech[:, : speech.size(1) // 10 * 10].unflatten(1, (-1, 10))), speech_lengths // 10


class _CharTokenizer:
    bos_token_id = 1

    def __call__(self, text, add_special_tokens=False):
        return argparse.Namespace(input_ids=[3 + ord(c) % 20 for c in text])


class _GRULM(AbsLLM):
    """Embedding -> GRU -> linear head: an LLM that is nothing but the interface."""

    def __init__(self):
        super().__init__()
        self.hidden_size, self.eos_token_id, self.max_positions = 8, 2, None
        self.tokenizer = _CharTokenizer()
        self.prompt = PromptTemplate("hi <speech> ok", self.tokenizer)
        self.embedding, self.gru, self.head = torch.nn.Embedding(32, 8), torch.nn.GRU(8, 8, batch_first=True), \
            torch.nn.Linear(8, 32)

    def embed(self, token_ids):
        return self.embedding(token_ids.clamp(min=0))

    def decoder_forward(self, inputs_embeds, attention_mask):
        return self.gru(inputs_embeds)[0]

    def lm_head(self, hidden):
        return self.head(hidden)


def test_the_model_needs_only_the_component_interfaces():
    """Any AbsEncoder and AbsLLM make a model that trains and builds decoding prefixes: the model reaches into
    no particular library's modules."""
    torch.manual_seed(0)
    model = SpeechLLMModel(_FrameEncoder(), LinearAdapter(4, 8, downsample_rate=2), _GRULM())
    speech, speech_lengths, text, text_lengths = torch.randn(2, 200), torch.tensor([200, 120]), \
        torch.tensor([[5, 6, 7], [8, -1, -1]]), torch.tensor([3, 1])
    loss, stats, weight = model(speech, speech_lengths, text, text_lengths)
    loss.backward()
    assert torch.isfinite(loss) and int(weight) == 2 and model.encoder.proj.weight.grad is not None
    state = model.state_dict()  # nothing to reload from a dir: every parameter, and a digest of no base weights
    assert set(state) == {n for n, _ in model.named_parameters()} | {"base_weights_digest"}
    assert not bool(state["base_weights_digest"].any())
    emb, emb_lengths = model.encode_speech(speech, speech_lengths)
    prefix, mask = model.build_prefix(emb, emb_lengths)
    # [BOS] h i | 20 -> 10 and 12 -> 6 speech frames | o k
    assert prefix.shape == (2, 3 + 10 + 2, 8) and mask.sum(1).tolist() == [15, 3 + 6 + 2]


def test_text_input_noise_corrupts_only_the_training_history(tiny_models, make_model_args):
    """text_input_noise replaces that share of the teacher-forced transcript tokens in training, never the targets;
    validation sees the clean history; a value outside [0, 1) is refused."""
    args = make_model_args(tiny_models)
    args.model_conf = {"text_input_noise": 0.5}
    model = SpeechLLMTask.build_model(args)
    text = torch.randint(3, 100, (4, 200))
    torch.manual_seed(0)
    model.train()
    noisy = model._noisy_history(text)
    share = float((noisy != text).float().mean())
    assert 0.4 < share < 0.55, share  # 0.5, less the draws that hit the same token
    model.eval()
    assert torch.equal(model._noisy_history(text), text)
    speech, speech_lengths, text, text_lengths = batch()
    model.train()
    _, stats, _ = model(speech, speech_lengths, text, text_lengths)
    assert torch.isfinite(stats["loss"])
    args.model_conf = {"text_input_noise": 1.0}
    with pytest.raises(ValueError, match="text_input_noise"):
        SpeechLLMTask.build_model(args)


def test_checkpoint_refuses_other_base_weights(tiny_models, make_model_args, tmp_path, caplog):
    """A checkpoint records a digest of the base weights it leaves out; on a rebuilt LLM dir (same architecture,
    other weights) loading fails naming that dir, unless allowed; ESPnet's checkpoint averaging keeps the digest."""
    args = make_model_args(tiny_models, "lora", "lora", matching_weight=0.5)
    state = SpeechLLMTask.build_model(args).state_dict()
    digest = state["base_weights_digest"]
    assert digest.shape == (2, 16) and bool(digest.all())  # both sides leave frozen weights out
    assert torch.equal((digest + digest + digest) / 3, digest)  # average_nbest_models: sum, then / n
    rebuilt = tmp_path / "llm"
    shutil.copytree(f"{tiny_models}/llm", rebuilt)
    weights = load_file(rebuilt / "model.safetensors")
    save_file({k: v + 0.01 for k, v in weights.items()}, rebuilt / "model.safetensors", metadata={"format": "pt"})
    on_rebuilt = copy.deepcopy(args)
    on_rebuilt.llm_conf["model_dir"] = str(rebuilt)
    model = SpeechLLMTask.build_model(on_rebuilt)
    with pytest.raises(BaseWeightsMismatchError, match=f"llm was trained on other base weights .*{rebuilt}"):
        model.load_state_dict(state)
    model.allow_base_weight_mismatch = True
    with caplog.at_level("WARNING"):
        model.load_state_dict(state)
    assert "other base weights" in caplog.text
    caplog.clear()
    old = {k: v for k, v in state.items() if k != "base_weights_digest"}  # made before digests existed
    with caplog.at_level("WARNING"):
        SpeechLLMTask.build_model(args).load_state_dict(old)
    assert "records no base-weight digest" in caplog.text
    full = copy.deepcopy(args)  # save_frozen_weights: the checkpoint holds every weight, no dir is relied on
    full.model_conf = {"save_frozen_weights": True}
    assert not bool(SpeechLLMTask.build_model(full).state_dict()["base_weights_digest"].any())
