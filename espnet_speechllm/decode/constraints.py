"""The hard constraints of the search: the next tokens it never takes after a given history.

One object answers for both users, so they cannot disagree: the beam search masks the banned tokens
(``mask``), and the reachability check (``bin/check_decode_reachability``) asks whether a reference transcript +
EOS passes every step (``first_bans``). Rules (``BeamSearchConfig`` options):

- ``no_repeat_ngram_size`` n: HF's n-gram non-repetition anywhere in the hypothesis (the paper's constraint);
- ``no_loop_ngram_size`` n: the same against the n-grams at distance 1..n only, i.e. loops (``ngram.py``);
- ``min_new_tokens`` m: EOS is banned before m tokens.
"""
from dataclasses import dataclass
from typing import Sequence

import torch

from espnet_speechllm.decode.ngram import no_loop_ngram_mask, no_repeat_ngram_mask, repeats_ngram


@dataclass(frozen=True)
class Ban:
    """Token ``position`` (0-based; ``len(ids)`` is EOS) of a sequence is banned by ``rule`` (``option=value``);
    ``ngram`` holds the repeated n-gram's ids, ending with the banned token."""

    position: int
    rule: str
    ngram: tuple[int, ...] = ()


class SearchConstraints:
    """The constraints of one decoding config.

    Args:
        eos_ids: end-of-sequence ids (banned before ``min_new_tokens``).
        min_new_tokens, no_repeat_ngram_size, no_loop_ngram_size: see ``BeamSearchConfig``; 0 disables.
    """

    def __init__(self, eos_ids: Sequence[int], min_new_tokens: int = 0, no_repeat_ngram_size: int = 0,
                 no_loop_ngram_size: int = 0):
        self.eos_ids = list(eos_ids)
        self.min_new_tokens = min_new_tokens
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self.no_loop_ngram_size = no_loop_ngram_size

    @classmethod
    def from_config(cls, config, eos_ids: Sequence[int]) -> "SearchConstraints":
        return cls(eos_ids, config.min_new_tokens, config.no_repeat_ngram_size, config.no_loop_ngram_size)

    def mask(self, history: torch.Tensor, vocab_size: int) -> torch.Tensor | None:
        """``(N, t)`` generated tokens -> ``(N, V)`` bool, True on banned next tokens; None when none is."""
        banned = None
        for mask in (no_repeat_ngram_mask(history, self.no_repeat_ngram_size, vocab_size),
                     no_loop_ngram_mask(history, self.no_loop_ngram_size, vocab_size)):
            if mask is not None:
                banned = mask if banned is None else banned | mask
        if history.shape[1] < self.min_new_tokens:
            if banned is None:
                banned = torch.zeros(history.shape[0], vocab_size, dtype=torch.bool, device=history.device)
            banned[:, self.eos_ids] = True
        return banned

    def _rules(self, history: torch.Tensor, next_tokens: torch.Tensor):
        """(rule, n or 0, (N,) bool) for every rule that can ban ``next_tokens`` after ``history``."""
        if self.no_loop_ngram_size > 0:
            yield (f"no_loop_ngram_size={self.no_loop_ngram_size}", self.no_loop_ngram_size,
                   repeats_ngram(history, next_tokens, self.no_loop_ngram_size, loop=True))
        if self.no_repeat_ngram_size > 0:
            yield (f"no_repeat_ngram_size={self.no_repeat_ngram_size}", self.no_repeat_ngram_size,
                   repeats_ngram(history, next_tokens, self.no_repeat_ngram_size))
        if history.shape[1] < self.min_new_tokens:
            is_eos = torch.isin(next_tokens, torch.tensor(self.eos_ids, device=next_tokens.device))
            yield f"min_new_tokens={self.min_new_tokens}", 0, is_eos

    def first_bans(self, sequences: Sequence[Sequence[int]]) -> list[Ban | None]:
        """For each sequence of generated ids (EOS included, as the search would emit it), the first step at which
        the search bans its next token, or None when the whole sequence is allowed. Vectorized over sequences."""
        num = len(sequences)
        bans: list[Ban | None] = [None] * num
        if num == 0:
            return bans
        lengths = torch.tensor([len(s) for s in sequences])  # (S,)
        padded = torch.full((num, int(lengths.max())), -1, dtype=torch.long)  # (S, L); -1 never matches a token
        for i, seq in enumerate(sequences):
            padded[i, : len(seq)] = torch.as_tensor(list(seq), dtype=torch.long)
        live = torch.ones(num, dtype=torch.bool)  # (S,) not banned yet
        for t in range(padded.shape[1]):
            rows = (live & (lengths > t)).nonzero()[:, 0]  # (R,)
            if rows.numel() == 0:
                break
            history, next_tokens = padded[rows, :t], padded[rows, t]  # (R, t), (R,)
            for rule, n, banned in self._rules(history, next_tokens):
                for r in banned.nonzero()[:, 0].tolist():
                    row = int(rows[r])
                    if bans[row] is None:
                        ngram = tuple(padded[row, max(0, t - n + 1): t + 1].tolist()) if n else ()
                        bans[row] = Ban(t, rule, ngram)
                        live[row] = False
        return bans
