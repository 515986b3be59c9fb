"""Causal-LM pretraining of a small Llama on a text pool (the synth recipe's stand-in for Vicuna's pretraining)."""
import logging
import random
from typing import List

import torch
from tqdm import tqdm

logger = logging.getLogger(__name__)


def pretrain_causal_lm(model, tokenizer, sentences: List[str], steps: int, batch_size: int = 32,
                       lr: float = 3e-3, seed: int = 0) -> float:
    """Train ``model`` on ``BOS sentence EOS`` for ``steps`` AdamW steps; returns the last loss."""
    rng = random.Random(seed)
    encoded = [[tokenizer.bos_token_id] + tokenizer(s, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
               for s in sentences]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    loss_value = float("nan")
    for _ in tqdm(range(steps), desc="LLM text pretraining", mininterval=5):
        batch = [encoded[rng.randrange(len(encoded))] for _ in range(batch_size)]
        ids = torch.nn.utils.rnn.pad_sequence([torch.tensor(b) for b in batch], batch_first=True, padding_value=0)
        mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(b), dtype=torch.long) for b in batch], batch_first=True)
        labels = ids.masked_fill(mask == 0, -100)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_value = loss.item()
    logger.info(f"LLM text pretraining: {steps} steps, final loss {loss_value:.3f}")
    model.eval()
    return loss_value
