"""CTC pretraining of a small HuBERT-architecture encoder.

Stands in for HuBERT's self-supervised pretraining in the synth recipe: it gives the encoder phonetic
representations on a CPU, so the adapter/LLM stages see a useful frozen/LoRA encoder. The CTC units are
characters, or the LLM's own tokens (``TokenUnits``): then the encoder's last layer already separates the
units the LLM reads and writes. Speed perturbation and additive noise during pretraining stand in for the
variety of HuBERT's 60k hours.
"""
import logging
import random
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torchaudio
from tqdm import tqdm

from espnet_speechllm.data.audio import load_audio
from espnet_speechllm.data.kaldi_dir import read_kaldi_file
from espnet_speechllm.encoder.hf_speech_encoder import normalize_per_utterance

logger = logging.getLogger(__name__)


def load_ctc_data(data_dir: str) -> Tuple[List[np.ndarray], List[str]]:
    """The audio and transcripts of a data dir; utterances with an empty transcript have nothing to learn."""
    wavs = read_kaldi_file(f"{data_dir}/wav.scp")
    texts = read_kaldi_file(f"{data_dir}/text", allow_empty_value=True)
    keys = [k for k in wavs if texts.get(k)]
    audio = [load_audio(k, wavs[k]) for k in tqdm(keys, desc="loading encoder pretraining audio", mininterval=5)]
    return audio, [texts[k] for k in keys]


class CharUnits:
    """CTC units = the characters of the training texts; id 0 is the blank."""

    def __init__(self, texts: Sequence[str] = (), vocab: Optional[List[str]] = None):
        self.vocab = vocab if vocab is not None else ["<blank>"] + sorted({c for t in texts for c in t})
        self.index = {c: i for i, c in enumerate(self.vocab)}

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> List[int]:
        return [self.index[c] for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.vocab[i] for i in ids)


class TokenUnits:
    """CTC units = the LLM tokenizer's tokens, shifted by one; id 0 is the blank."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.vocab = ["<blank>"] + tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> List[int]:
        return [i + 1 for i in self.tokenizer(text, add_special_tokens=False).input_ids]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode([i - 1 for i in ids], skip_special_tokens=True)


def augment(wav: np.ndarray, rng: random.Random, speeds: Sequence[float], noise_prob: float,
            snr_range: Tuple[float, float]) -> torch.Tensor:
    """Speed perturbation (resampling, as ``sox speed``) and white/brown noise at a random SNR."""
    x = torch.from_numpy(wav)
    speed = rng.choice(speeds) if speeds else 1.0
    if speed != 1.0:
        x = torchaudio.functional.resample(x, orig_freq=round(16000 * speed), new_freq=16000)
    if rng.random() < noise_prob:
        g = torch.Generator().manual_seed(rng.getrandbits(31))
        noise = torch.randn(x.shape, generator=g)
        if rng.random() < 0.5:  # brown noise: integrated white noise, most energy at low frequencies
            noise = torch.cumsum(noise, 0)
            noise = noise - noise.mean()
        snr = rng.uniform(*snr_range)
        scale = (x.pow(2).mean() / noise.pow(2).mean().clamp(min=1e-12) / 10 ** (snr / 10)).sqrt()
        x = x + scale * noise
    return x


def pretrain_ctc(ctc_model, audio: List[np.ndarray], texts: List[str], units, steps: int, batch_size: int = 8,
                 lr: float = 1e-3, seed: int = 0, speeds: Sequence[float] = (), noise_prob: float = 0.0,
                 snr_range: Tuple[float, float] = (5.0, 30.0), freeze_conv_after: float = 1.0,
                 eval_every: int = 0, evaluate=None) -> float:
    """Train an HF ``*ForCTC`` model for ``steps`` steps on (audio, text); returns the last loss.

    After ``freeze_conv_after`` of the steps the waveform CNN is frozen: it learns early, and its backward
    pass on raw audio is most of the cost of a step on a CPU. ``evaluate(model, step)`` runs every
    ``eval_every`` steps (0: never).
    """
    rng = random.Random(seed)
    opt = torch.optim.AdamW(ctc_model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    ctc_model.train()
    loss_value = float("nan")
    labels_all = [torch.tensor(units.encode(t)) for t in texts]
    order = sorted(range(len(audio)), key=lambda i: len(audio[i]))  # length-sorted batches waste less padding
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for step in tqdm(range(1, steps + 1), desc="encoder CTC pretraining", mininterval=10):
        if step == int(freeze_conv_after * steps) + 1:
            ctc_model.freeze_feature_encoder()
        batch = batches[rng.randrange(len(batches))]
        wav = [augment(audio[i], rng, speeds, noise_prob, snr_range) for i in batch]
        lengths = torch.tensor([len(w) for w in wav])
        x = torch.nn.utils.rnn.pad_sequence(wav, batch_first=True)
        mask = (torch.arange(x.size(1))[None] < lengths[:, None]).long()
        labels = torch.nn.utils.rnn.pad_sequence([labels_all[i] for i in batch], batch_first=True, padding_value=-100)
        loss = ctc_model(normalize_per_utterance(x, mask), attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ctc_model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_value = loss.item()
        if evaluate is not None and eval_every and step % eval_every == 0:
            evaluate(ctc_model, step)
            ctc_model.train()
    logger.info(f"encoder CTC pretraining: {steps} steps, final loss {loss_value:.3f}")
    ctc_model.eval()
    return loss_value


def greedy_ctc_cer(ctc_model, audio: List[np.ndarray], texts: List[str], units) -> float:
    """Character error rate of greedy CTC decoding: how much the encoder's frames know about the text."""
    import jiwer

    ctc_model.eval()
    hyps = []
    with torch.no_grad():
        for wav in audio:
            x = torch.from_numpy(wav)[None]
            ids = ctc_model(normalize_per_utterance(x, torch.ones_like(x))).logits.argmax(-1)[0].tolist()
            hyps.append(units.decode([i for j, i in enumerate(ids) if i != 0 and (j == 0 or ids[j - 1] != i)]))
    return float(jiwer.cer(texts, hyps))
