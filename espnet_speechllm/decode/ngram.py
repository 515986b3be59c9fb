"""N-gram non-repetition: the tokens that would repeat an n-gram already in a hypothesis.

One of the inference-time constraints the paper applies against insertion errors (Pham et al., arXiv 2406.17272,
Sec. "Reducing insertion errors": n-gram non-repetition and length penalty). Two scopes:

- anywhere (``no_repeat_ngram_mask``): HF transformers' ``NoRepeatNGramLogitsProcessor``. Once a hypothesis holds
  an n-gram, the token that would complete the same (n-1)-gram prefix again is banned.
- loop (``no_loop_ngram_mask``): the same rule, but only against the n-grams that overlap or directly precede the
  one the next token completes (distance 1..n). It bans exactly the tokens that would make the hypothesis end in
  ``n + p`` tokens of period ``p <= n``: a loop. Repeats further apart (a word said twice in a sentence) are free.

Only the generated tokens count (the prompt/speech prefix is embeddings). ``*_mask`` give the banned next tokens
over the vocabulary (what the search applies); ``repeats_ngram`` answers the same question for one given next
token per row (what the reachability check of a reference asks), from the same matching code.
"""
import torch


def _ngram_matches(tokens: torch.Tensor, ngram_size: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Earlier n-grams whose first n-1 tokens equal the last n-1 tokens of each hypothesis.

    Args:
        tokens: ``(N, L)`` generated tokens so far.
        ngram_size: n >= 1.

    Returns:
        ``matches (N, W)`` bool per window of n tokens and ``last (N, W)`` the last token of each window: the
        next token equal to ``last`` where ``matches`` would repeat that window. None when ``L < n``.
    """
    length = tokens.shape[1]
    if length < ngram_size:
        return None
    prefix = tokens[:, length + 1 - ngram_size:]  # (N, n-1)
    windows = tokens.unfold(1, ngram_size, 1)  # (N, L-n+1, n)
    matches = (windows[..., :-1] == prefix.unsqueeze(1)).all(dim=-1)  # (N, L-n+1)
    return matches, windows[..., -1]


def _loop_window(tokens: torch.Tensor, ngram_size: int) -> torch.Tensor:
    """The last 2n-1 tokens: their windows of n are the n-grams at distance 1..n from the next n-gram."""
    return tokens[:, max(0, tokens.shape[1] - (2 * ngram_size - 1)):]


def no_repeat_ngram_mask(tokens: torch.Tensor, ngram_size: int, vocab_size: int) -> torch.Tensor | None:
    """Boolean mask of the banned next tokens (HF ``NoRepeatNGramLogitsProcessor``), vectorized over hypotheses.

    Args:
        tokens: ``(N, L)`` generated tokens of each hypothesis so far (all hypotheses have the same length L).
        ngram_size: n; 0 disables the constraint.
        vocab_size: V, the width of the returned mask.

    Returns:
        ``(N, V)`` bool mask, True where the next token would repeat an n-gram; None when nothing can be banned
        yet (``L < n`` or n == 0), so callers skip the masking.
    """
    if ngram_size <= 0:
        return None
    found = _ngram_matches(tokens, ngram_size)
    if found is None:
        return None
    matches, last = found
    # Non-matching windows write to a spare column past the vocabulary.
    banned = torch.zeros(tokens.shape[0], vocab_size + 1, dtype=torch.bool, device=tokens.device)  # (N, V+1)
    banned.scatter_(1, torch.where(matches, last.clamp(max=vocab_size), vocab_size), True)
    return banned[:, :vocab_size]  # (N, V)


def no_loop_ngram_mask(tokens: torch.Tensor, ngram_size: int, vocab_size: int) -> torch.Tensor | None:
    """Like ``no_repeat_ngram_mask``, against the n-grams at distance 1..n only (loops); None when none."""
    if ngram_size <= 0:
        return None
    return no_repeat_ngram_mask(_loop_window(tokens, ngram_size), ngram_size, vocab_size)


def repeats_ngram(tokens: torch.Tensor, next_tokens: torch.Tensor, ngram_size: int, loop: bool = False) -> torch.Tensor:
    """Whether ``next_tokens`` is banned: ``(N, L)`` history, ``(N,)`` next token -> ``(N,)`` bool.

    Equals ``mask.gather(1, next_tokens[:, None])`` of ``no_loop_ngram_mask`` (``loop``) or ``no_repeat_ngram_mask``
    without building the (N, V) mask. n == 0 bans nothing.
    """
    banned = torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    if ngram_size <= 0:
        return banned
    found = _ngram_matches(_loop_window(tokens, ngram_size) if loop else tokens, ngram_size)
    if found is None:
        return banned
    matches, last = found
    return (matches & (last == next_tokens[:, None])).any(dim=1)
