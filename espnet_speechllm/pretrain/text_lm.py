"""Causal-LM pretraining of a small Llama on a text pool (the synth recipe's stand-in for Vicuna's pretraining).

Vicuna-7B can repeat text from its context when asked to; the method relies on that, since an LLM-based
recognizer has to read its transcript out of the speech prefix. A 2-layer toy LM trained only on sentences
has no such skill, so part of the samples are instruction-style copies in the ASR prompt layout:

    BOS  USER: <text, each token repeated 1..max_repeat times> Transcribe the audio. ASSISTANT: <text> EOS

The repeated tokens mimic the speech prefix, where every token spans several encoder frames. The copied text
is either a sentence of the pool or a string of words drawn uniformly from the pool's vocabulary: on grammar
sentences the answer can be guessed from the grammar alone, which delays the copy skill (induction heads form
through a sudden phase change, and a shortcut postpones it); random strings can only be answered by copying.
Random strings start short and grow to full length over the first ``curriculum_steps`` steps.
"""
import logging
import math
import random
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from tqdm import tqdm

logger = logging.getLogger(__name__)

SAMPLE_KINDS = ("plain", "copy", "random_copy")


class PretrainSampler:
    """Draws token-id sequences of three kinds, with probabilities ``mix`` (see the module docstring).

    Args:
        tokenizer: the LLM tokenizer (BOS/EOS ids, sentence encoding).
        sentences: the text pool.
        rng: the random stream.
        mix: probability per kind: ``plain`` (``BOS s EOS``), ``copy`` (stretched copy of a sentence),
            ``random_copy`` (stretched copy of a random word string); they must sum to 1.
        copy_template: the ASR prompt template (one ``<speech>`` slot), needed by the copy kinds.
        max_repeat: each copied token is repeated 1..max_repeat times in the prefix.
        random_words: (min, max) words of a random string.
        max_blank: before each copied token, 0..max_blank filler positions (``filler_id``): the layout of a
            CTC-trained encoder, whose frames between two tokens carry no token (0: none).
        filler_id: the filler token (default: the tokenizer's unk, which plain text never contains).
        clean_share: the share of copy samples drawn in the plain layout instead (tokens repeated
            1..clean_max_repeat times, no fillers) and with an empty noise span: a phase that teaches the adapter
            layout keeps the plain copy skill with them.
        clean_max_repeat: the repeats of the plain layout.
    """

    def __init__(self, tokenizer, sentences: List[str], rng: random.Random, mix: Dict[str, float],
                 copy_template: Optional[str] = None, max_repeat: int = 6, random_words: Tuple[int, int] = (3, 12),
                 max_blank: int = 0, filler_id: Optional[int] = None, clean_share: float = 0.0,
                 clean_max_repeat: int = 6):
        unknown = sorted(set(mix) - set(SAMPLE_KINDS))
        if unknown:
            raise ValueError(f"unknown sample kind(s) {unknown}; allowed: {list(SAMPLE_KINDS)}")
        if any(p < 0 for p in mix.values()) or abs(sum(mix.values()) - 1.0) > 1e-6:
            raise ValueError(f"sample fractions must be >= 0 and sum to 1, got {mix}")
        copies = mix.get("copy", 0) + mix.get("random_copy", 0)
        if copies > 0 and not copy_template:
            raise ValueError("copy samples need the prompt template (with one <speech> slot)")
        self.tokenizer, self.rng, self.max_repeat = tokenizer, rng, max_repeat
        self.max_blank = max_blank
        if not 0.0 <= clean_share <= 1.0:
            raise ValueError(f"clean_share must be in [0, 1], got {clean_share}")
        self.clean_share, self.clean_max_repeat = clean_share, clean_max_repeat
        self.filler_id = tokenizer.unk_token_id if filler_id is None else filler_id
        if max_blank > 0 and self.filler_id is None:
            raise ValueError("max_blank > 0 needs a filler token: the tokenizer has no unk token, give filler_id")
        self.kinds = [k for k in SAMPLE_KINDS if mix.get(k, 0) > 0]
        self.weights = [mix[k] for k in self.kinds]
        self.encoded = [tokenizer(s, add_special_tokens=False).input_ids for s in sentences]
        # Encoding each word once keeps random strings cheap; a word keeps its sentence-initial tokenization.
        words = sorted({w for s in sentences for w in s.split()})
        self.word_ids = [tokenizer(w, add_special_tokens=False).input_ids for w in words]
        self.random_words = random_words
        self.max_words = random_words[1]
        if copies > 0:
            from espnet_speechllm.llm.prompt import PromptTemplate

            prompt = PromptTemplate(copy_template, tokenizer)
            self.before, self.after = prompt.before_ids, prompt.after_ids  # before starts with BOS

    def set_max_words(self, n: int) -> None:
        """Curriculum: random strings have at most ``n`` words (clipped to ``random_words``)."""
        self.max_words = max(self.random_words[0], min(n, self.random_words[1]))

    def sample(self) -> List[int]:
        return self.draw()[0]

    def draw(self) -> Tuple[List[int], Tuple[int, int]]:
        """A sample and the span ``[lo, hi)`` of its stretched prefix (empty for a plain sentence)."""
        kind = self.rng.choices(self.kinds, self.weights)[0]
        if kind == "plain":
            ids = self.encoded[self.rng.randrange(len(self.encoded))]
            return [self.tokenizer.bos_token_id] + ids + [self.tokenizer.eos_token_id], (0, 0)
        clean = self.clean_share > 0 and self.rng.random() < self.clean_share
        seq, start = self.copy_sample(self.random_string() if kind == "random_copy" else None, clean=clean)
        lo, hi = self.prefix_span(start)
        return seq, (lo, lo) if clean else (lo, hi)  # a plain-layout prefix gets no noise

    def prefix_span(self, answer_start: int) -> Tuple[int, int]:
        """``[lo, hi)`` of the stretched prefix of a copy sample whose answer starts at ``answer_start``."""
        return len(self.before), answer_start - len(self.after)

    def random_string(self) -> List[int]:
        n = self.rng.randint(self.random_words[0], self.max_words)
        return [t for _ in range(n) for t in self.word_ids[self.rng.randrange(len(self.word_ids))]]

    def copy_sample(self, ids: Optional[List[int]] = None, clean: bool = False) -> Tuple[List[int], int]:
        """A stretched-copy sequence of ``ids`` (default: a random sentence) and the position of its answer;
        ``clean``: in the plain layout (no fillers, ``clean_max_repeat``)."""
        if ids is None:
            ids = self.encoded[self.rng.randrange(len(self.encoded))]
        max_blank = 0 if clean else self.max_blank
        max_repeat = self.clean_max_repeat if clean else self.max_repeat
        stretched = []
        for t in ids:
            stretched += [self.filler_id] * self.rng.randint(0, max_blank) if max_blank else []
            stretched += [t] * self.rng.randint(1, max_repeat)
        seq = self.before + stretched + self.after + ids + [self.tokenizer.eos_token_id]
        return seq, len(seq) - len(ids) - 1


def pretrain_causal_lm(model, sampler: PretrainSampler, steps: int, batch_size: int = 32, lr: float = 3e-3,
                       curriculum_steps: int = 0, eval_every: int = 0, evaluate=None, prefix_noise: float = 0.0,
                       seed: int = 0) -> float:
    """Train ``model`` for ``steps`` AdamW steps (one-cycle LR) on ``sampler``'s samples; returns the last loss.

    ``evaluate(model, step)`` is called every ``eval_every`` steps (0: never), to log the copy accuracy as it
    jumps. ``prefix_noise`` > 0 adds Gaussian noise to the embeddings of each stretched prefix, with a
    relative level drawn per sample from U(0, prefix_noise) (see :func:`noisy_prefix_embeddings`).
    """
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    loss_value = float("nan")
    for step in tqdm(range(1, steps + 1), desc="LLM text pretraining", mininterval=10):
        if curriculum_steps:
            lo, hi = sampler.random_words
            sampler.set_max_words(lo + math.ceil((hi - lo) * min(1.0, step / curriculum_steps)))
        drawn = [sampler.draw() for _ in range(batch_size)]
        loss = causal_lm_loss(model, [seq for seq, _ in drawn], [span for _, span in drawn], prefix_noise, generator)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_value = loss.item()
        if evaluate is not None and eval_every and step % eval_every == 0:
            evaluate(model, step)
            model.train()
    logger.info(f"LLM text pretraining: {steps} steps, final loss {loss_value:.3f}")
    model.eval()
    return loss_value


def causal_lm_loss(model, batch: Sequence[List[int]], spans: Optional[Sequence[Tuple[int, int]]] = None,
                   noise: float = 0.0, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Mean next-token loss of right-padded ``batch``; with ``spans``, their embeddings get noise (see below)."""
    ids = torch.nn.utils.rnn.pad_sequence([torch.tensor(b) for b in batch], batch_first=True, padding_value=0)
    mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(b), dtype=torch.long) for b in batch], batch_first=True)
    labels = ids.masked_fill(mask == 0, -100)
    if spans is None or noise <= 0:
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss
    levels = torch.rand(len(spans), generator=generator) * noise  # a level per row, U(0, noise)
    embeds = noisy_prefix_embeddings(model.get_input_embeddings()(ids), spans, levels, generator)
    return model(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss


def noisy_prefix_embeddings(embeds: torch.Tensor, spans: Sequence[Tuple[int, int]], levels: torch.Tensor,
                            generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """(B, L, D) embeddings with Gaussian noise on each row's ``[lo, hi)`` span, at that row's ``levels[i]``.

    An adapter's outputs only approximate the token embeddings the LLM's copy circuit was trained on, and
    exact-embedding copying is brittle: at cosine 0.7 to the true embeddings, copy accuracy falls from 0.99 to
    0.88 (measured on the synth stand-in). The noise per position has std ``level * |e| / sqrt(D)`` (level 1:
    cosine ~0.7 to the clean embedding); pretraining draws the level per row from U(0, prefix_noise), so the
    copy skill learns to read inexact tokens.
    """
    noise = torch.randn(embeds.shape, generator=generator, dtype=embeds.dtype)
    scale = embeds.detach().norm(dim=-1, keepdim=True) / embeds.size(-1) ** 0.5  # (B, L, 1)
    level_at = torch.zeros(embeds.shape[:2], dtype=embeds.dtype)  # (B, L): the row's level inside its span
    for i, (lo, hi) in enumerate(spans):
        level_at[i, lo:hi] = levels[i]
    return embeds + noise * scale * level_at[..., None]


@torch.no_grad()
def copy_accuracy(model, sampler: PretrainSampler, num_samples: int = 100, random_strings: bool = False,
                  prefix_noise: float = 0.0, seed: int = 0) -> float:
    """Greedy next-token accuracy on the answer part (EOS included) of stretched copies, teacher forced.

    The copied text is a sentence of ``sampler``'s pool, or a random word string with ``random_strings``.
    ``prefix_noise``: the stretched prefix gets noise of exactly this level (:func:`noisy_prefix_embeddings`).
    """
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    correct = total = 0
    for _ in range(num_samples):
        seq, start = sampler.copy_sample(sampler.random_string() if random_strings else None)
        if prefix_noise > 0:
            embeds = noisy_prefix_embeddings(model.get_input_embeddings()(torch.tensor([seq])),
                                             [sampler.prefix_span(start)], torch.tensor([prefix_noise]), generator)
            pred = model(inputs_embeds=embeds).logits[0, start - 1 : -1].argmax(-1)
        else:
            pred = model(input_ids=torch.tensor([seq])).logits[0, start - 1 : -1].argmax(-1)
        correct += int((pred == torch.tensor(seq[start:])).sum())
        total += len(seq) - start
    return correct / max(total, 1)


@torch.no_grad()
def perplexity(model, tokenizer, sentences: List[str], batch_size: int = 64) -> float:
    """Per-token perplexity of ``BOS s EOS`` over ``sentences`` (EOS predicted, BOS not)."""
    model.eval()
    nll = count = 0.0
    seqs = [[tokenizer.bos_token_id] + tokenizer(s, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
            for s in sentences]
    for i in range(0, len(seqs), batch_size):
        batch = seqs[i : i + batch_size]
        n = sum(len(b) - 1 for b in batch)
        nll += float(causal_lm_loss(model, batch)) * n
        count += n
    return math.exp(nll / max(count, 1))
