"""Causal-LM pretraining of a small Llama on a text pool (the synth recipe's stand-in for Vicuna's pretraining).

Vicuna-7B can repeat text from its context when asked to; the method relies on that, since an LLM-based
recognizer has to read its transcript out of the speech prefix. A 2-layer toy LM trained only on sentences
has no such skill, so ``copy_fraction`` of the samples are instruction-style copies in the ASR prompt layout:

    BOS  USER: <sentence, each token repeated 1..max_repeat times> Transcribe the audio. ASSISTANT: <sentence> EOS

The repeated tokens mimic the speech prefix, where every token spans several encoder frames. On the synth
corpus this lifts the dev token accuracy after 1000 adapter + LoRA steps on frozen-encoder features from
0.66 (sentences only) to 0.73.
"""
import logging
import random
from typing import List, Optional, Sequence, Tuple

import torch
from tqdm import tqdm

logger = logging.getLogger(__name__)


class PretrainSampler:
    """Draws token-id sequences: plain ``BOS s EOS`` or, with probability ``copy_fraction``, a stretched copy."""

    def __init__(self, tokenizer, sentences: List[str], rng: random.Random, copy_fraction: float = 0.0,
                 copy_template: Optional[str] = None, max_repeat: int = 6):
        if not 0.0 <= copy_fraction <= 1.0:
            raise ValueError(f"copy_fraction must be in [0, 1], got {copy_fraction}")
        if copy_fraction > 0 and not copy_template:
            raise ValueError("copy_fraction > 0 needs the prompt template (with one <speech> slot)")
        self.tokenizer, self.rng = tokenizer, rng
        self.copy_fraction, self.max_repeat = copy_fraction, max_repeat
        self.encoded = [tokenizer(s, add_special_tokens=False).input_ids for s in sentences]
        if copy_fraction > 0:
            from espnet_speechllm.llm.prompt import PromptTemplate

            prompt = PromptTemplate(copy_template, tokenizer)
            self.before, self.after = prompt.before_ids, prompt.after_ids  # before starts with BOS

    def sample(self) -> List[int]:
        ids = self.encoded[self.rng.randrange(len(self.encoded))]
        if self.rng.random() >= self.copy_fraction:
            return [self.tokenizer.bos_token_id] + ids + [self.tokenizer.eos_token_id]
        return self.copy_sample(ids)[0]

    def copy_sample(self, ids: Optional[List[int]] = None) -> Tuple[List[int], int]:
        """A stretched-copy sequence and the position of its first answer token."""
        if ids is None:
            ids = self.encoded[self.rng.randrange(len(self.encoded))]
        stretched = [t for t in ids for _ in range(self.rng.randint(1, self.max_repeat))]
        seq = self.before + stretched + self.after + ids + [self.tokenizer.eos_token_id]
        return seq, len(seq) - len(ids) - 1


def pretrain_causal_lm(model, tokenizer, sentences: List[str], steps: int, batch_size: int = 32,
                       lr: float = 3e-3, seed: int = 0, copy_fraction: float = 0.0,
                       copy_template: Optional[str] = None) -> float:
    """Train ``model`` for ``steps`` AdamW steps on samples of :class:`PretrainSampler`; returns the last loss."""
    sampler = PretrainSampler(tokenizer, sentences, random.Random(seed), copy_fraction, copy_template)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    loss_value = float("nan")
    for _ in tqdm(range(steps), desc="LLM text pretraining", mininterval=5):
        loss = causal_lm_loss(model, [sampler.sample() for _ in range(batch_size)])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_value = loss.item()
    logger.info(f"LLM text pretraining: {steps} steps, final loss {loss_value:.3f}")
    model.eval()
    return loss_value


def causal_lm_loss(model, batch: Sequence[List[int]]) -> torch.Tensor:
    """Mean next-token loss of right-padded ``batch``."""
    ids = torch.nn.utils.rnn.pad_sequence([torch.tensor(b) for b in batch], batch_first=True, padding_value=0)
    mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(b), dtype=torch.long) for b in batch], batch_first=True)
    return model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss


@torch.no_grad()
def copy_accuracy(model, sampler: PretrainSampler, num_samples: int = 100) -> float:
    """Greedy next-token accuracy on the answer part of stretched-copy samples (teacher forced)."""
    model.eval()
    correct = total = 0
    for _ in range(num_samples):
        seq, start = sampler.copy_sample()
        pred = model(input_ids=torch.tensor([seq])).logits[0, start - 1 : -1].argmax(-1)
        correct += int((pred == torch.tensor(seq[start:])).sum())
        total += len(seq) - start
    return correct / max(total, 1)
