"""CTC prefix scores of beam-search hypotheses (joint CTC/attention decoding; not in the paper).

Hybrid CTC/attention decoding (Watanabe et al. 2017) scores every candidate token with
``(1 - ctc_weight) * log p_LLM + ctc_weight * log p_CTC(prefix + token) - log p_CTC(prefix)``. The CTC prefix
probability is high only for hypotheses whose tokens are all spoken, in order, and end where the audio does, so
it vetoes the errors an autoregressive LLM makes on its own: words said twice, content words taken from the
language prior instead of the audio, sentences ended early or late. Here the CTC posteriors are those of the
adapter frames over the LLM's embedding table (``loss/adapter_ctc.py``), so the scorer has the LLM's vocabulary.

ESPnet's batched prefix scorer (``CTCPrefixScoreTH``) does the arithmetic. It assumes a fixed batch of
utterances with a fixed number of hypotheses each, while the beam search drops finished utterances; this class
keeps the scorer's rows for all utterances of the batch and gives the search the rows of the live ones.
"""
import torch
from espnet.nets.ctc_prefix_score import CTCPrefixScoreTH


class CTCPrefixRows:
    """CTC prefix scores for ``beam`` hypotheses of each of U utterances.

    Args:
        log_probs: (U, T, V) CTC log-posteriors over the LLM's vocabulary.
        lengths: (U,) valid frames of each utterance.
        blank_id: the CTC blank (a token the search never emits: it gets a score of -1e10).
        eos_id: the search's end-of-sequence token; its score is the probability that the hypothesis is complete.
        beam: hypotheses per utterance (rows are utterance-major, as in the beam search).
        pre_beam: score only the ``pre_beam`` best tokens of each row by the LLM (0: the whole vocabulary); the
            others get -1e10, as in ESPnet's partial scoring. Use it with large vocabularies.
    """

    def __init__(self, log_probs: torch.Tensor, lengths: torch.Tensor, blank_id: int, eos_id: int, beam: int,
                 pre_beam: int = 0):
        num_utts, _, vocab = log_probs.shape
        self.scorer = CTCPrefixScoreTH(log_probs.float().clone(), lengths, blank_id, eos_id)
        self.beam = beam
        self.vocab = vocab
        self.eos_id = eos_id
        self.pre_beam = pre_beam if 0 < pre_beam < vocab else 0
        # Each row's label history with a leading start symbol (the scorer reads len(y) - 1 and y[-1]).
        self.history = torch.full((num_utts * beam, 1), eos_id, dtype=torch.long, device=log_probs.device)
        self.state = None
        self.pending = None

    def scores(self, utts: torch.Tensor, lm_logp: torch.Tensor) -> torch.Tensor:
        """Next-token CTC scores of the live utterances' rows: utts (U',) original indices, lm_logp (U'*K, V)
        the LLM's log-probabilities (only for the pre-beam) -> (U'*K, V)."""
        scoring_ids = None
        if self.pre_beam:
            full = torch.zeros(self.history.shape[0], self.vocab, device=lm_logp.device)  # (U*K, V)
            full.view(-1, self.beam, self.vocab)[utts] = lm_logp.view(-1, self.beam, self.vocab)
            full[:, self.eos_id] = float("inf")  # the end of the hypothesis is always scored
            scoring_ids = torch.topk(full, self.pre_beam, dim=-1)[1]  # (U*K, P)
        local, self.pending = self.scorer(self.history.tolist(), self.state, scoring_ids)  # (U*K, V)
        return local.view(-1, self.beam, self.vocab)[utts].reshape(-1, self.vocab)

    def select(self, utts: torch.Tensor, src_beam: torch.Tensor, tokens: torch.Tensor) -> None:
        """Keep the chosen continuations: utts (U',) live utterances, src_beam (U', K) the row of each new
        beam within its utterance, tokens (U', K) its new token. Rows of finished utterances stay as they are."""
        num_all = self.history.shape[0] // self.beam
        keep = torch.arange(self.beam, device=tokens.device)[None].repeat(num_all, 1)  # (U, K)
        new_tokens = self.history[:, -1].view(num_all, self.beam).clone()  # (U, K)
        keep[utts] = src_beam
        new_tokens[utts] = tokens
        best_ids = keep * self.vocab + new_tokens  # (U, K) ids in the scorer's (beam x vocab) space
        self.state = self.scorer.index_select_state(self.pending, best_ids)
        rows = (torch.arange(num_all, device=tokens.device)[:, None] * self.beam + keep).reshape(-1)
        self.history = torch.cat((self.history[rows], new_tokens.reshape(-1, 1)), dim=1)

    @staticmethod
    def combine(lm_logp: torch.Tensor, ctc_scores: torch.Tensor, ctc_weight: float) -> torch.Tensor:
        """The joint score of each next token: (N, V) each -> (N, V)."""
        return (1.0 - ctc_weight) * lm_logp + ctc_weight * ctc_scores
