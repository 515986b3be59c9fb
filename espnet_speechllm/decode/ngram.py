"""N-gram non-repetition: the tokens that would repeat an n-gram already in a hypothesis.

One of the inference-time constraints the paper applies against insertion errors (Pham et al., arXiv 2406.17272,
Sec. "Reducing insertion errors": n-gram non-repetition and length penalty). Same rule as HF transformers'
``NoRepeatNGramLogitsProcessor``: once a hypothesis holds an n-gram, the token that would complete the same
(n-1)-gram prefix again is banned. Only the generated tokens count (the prompt/speech prefix is embeddings).
"""
import torch


def no_repeat_ngram_mask(tokens: torch.Tensor, ngram_size: int, vocab_size: int) -> torch.Tensor | None:
    """Boolean mask of the banned next tokens, vectorized over hypotheses.

    Args:
        tokens: ``(N, L)`` generated tokens of each hypothesis so far (all hypotheses have the same length L).
        ngram_size: n; 0 disables the constraint.
        vocab_size: V, the width of the returned mask.

    Returns:
        ``(N, V)`` bool mask, True where the next token would repeat an n-gram; None when nothing can be banned
        yet (``L < n`` or n == 0), so callers skip the masking.
    """
    num_hyps, length = tokens.shape
    if ngram_size <= 0 or length < ngram_size:
        return None
    # The last n-1 tokens are the prefix of the n-gram the next token would complete; every earlier window of n
    # tokens whose first n-1 tokens equal it bans its last token.
    prefix = tokens[:, length + 1 - ngram_size :]  # (N, n-1)
    windows = tokens.unfold(1, ngram_size, 1)  # (N, L-n+1, n)
    matches = (windows[..., :-1] == prefix.unsqueeze(1)).all(dim=-1)  # (N, L-n+1)
    # Non-matching windows write to a spare column past the vocabulary.
    banned = torch.zeros(num_hyps, vocab_size + 1, dtype=torch.bool, device=tokens.device)  # (N, V+1)
    banned.scatter_(1, torch.where(matches, windows[..., -1].clamp(max=vocab_size), vocab_size), True)
    return banned[:, :vocab_size]  # (N, V)
