"""CTC pretraining of a small HuBERT-architecture encoder on characters.

Stands in for HuBERT's self-supervised pretraining in the synth recipe: it gives the encoder phonetic
representations in minutes on a CPU, so the adapter/LLM stages see a useful frozen/LoRA encoder.
"""
import logging
import random
from typing import Dict, List, Tuple

import numpy as np
import torch
from tqdm import tqdm

from espnet_speechllm.data.audio import load_audio, read_scp

logger = logging.getLogger(__name__)


def load_ctc_data(data_dir: str) -> Tuple[List[np.ndarray], List[str]]:
    wavs = read_scp(f"{data_dir}/wav.scp")
    texts: Dict[str, str] = {}
    with open(f"{data_dir}/text", encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split(maxsplit=1)
            if parts:
                texts[parts[0]] = parts[1] if len(parts) > 1 else ""
    keys = [k for k in wavs if texts.get(k)]
    audio = [load_audio(k, wavs[k]) for k in tqdm(keys, desc="loading encoder pretraining audio", mininterval=5)]
    return audio, [texts[k] for k in keys]


def char_vocab(texts: List[str]) -> List[str]:
    return ["<blank>"] + sorted({c for t in texts for c in t})


def pretrain_ctc(ctc_model, audio: List[np.ndarray], texts: List[str], vocab: List[str], steps: int,
                 batch_size: int = 8, lr: float = 1e-3, seed: int = 0) -> float:
    """Train an HF ``*ForCTC`` model for ``steps`` steps on (audio, text); returns the last loss."""
    rng = random.Random(seed)
    index = {c: i for i, c in enumerate(vocab)}
    opt = torch.optim.AdamW(ctc_model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    ctc_model.train()
    loss_value = float("nan")
    order = sorted(range(len(audio)), key=lambda i: len(audio[i]))  # length-sorted batches waste less padding
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for _ in tqdm(range(steps), desc="encoder CTC pretraining", mininterval=5):
        batch = batches[rng.randrange(len(batches))]
        wav = [torch.from_numpy(audio[i]) for i in batch]
        lengths = torch.tensor([len(w) for w in wav])
        x = torch.nn.utils.rnn.pad_sequence(wav, batch_first=True)
        mask = (torch.arange(x.size(1))[None] < lengths[:, None]).long()
        x = (x - (x * mask).sum(1, keepdim=True) / lengths[:, None]) * mask
        x = x / (x.pow(2).sum(1, keepdim=True) / lengths[:, None]).sqrt().clamp(min=1e-4)
        labels = torch.nn.utils.rnn.pad_sequence(
            [torch.tensor([index[c] for c in texts[i]]) for i in batch], batch_first=True, padding_value=-100
        )
        loss = ctc_model(x, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ctc_model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_value = loss.item()
    logger.info(f"encoder CTC pretraining: {steps} steps, final loss {loss_value:.3f}")
    ctc_model.eval()
    return loss_value


def greedy_ctc_cer(ctc_model, audio: List[np.ndarray], texts: List[str], vocab: List[str]) -> float:
    """Character error rate of greedy CTC decoding: how much the encoder's frames know about the text."""
    import jiwer

    ctc_model.eval()
    hyps = []
    with torch.no_grad():
        for wav in audio:
            x = torch.from_numpy(wav)[None]
            x = (x - x.mean()) / x.std().clamp(min=1e-4)
            ids = ctc_model(x).logits.argmax(-1)[0].tolist()
            chars = [vocab[i] for j, i in enumerate(ids) if i != 0 and (j == 0 or ids[j - 1] != i)]
            hyps.append("".join(chars))
    return float(jiwer.cer(texts, hyps))

