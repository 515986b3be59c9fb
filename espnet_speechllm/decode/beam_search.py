"""Batched beam search over an HF causal LM from prefix embeddings, with KV cache.

Implements the decoding of Pham et al., arXiv 2406.17272 (Sec. "Reducing insertion errors"): beam search with
n-gram non-repetition and a length penalty, the token budget tied to the audio duration. The prefix (prompt +
adapter output, ``inputs_embeds``) is run once per utterance; then only the new token of every beam is fed.

The search follows HF transformers' ``generate`` step for step (top ``max(2, 1 + #EOS) * beam`` candidates,
finished beams scored ``sum_logprobs / length ** length_penalty`` with the length counting EOS, the same
``early_stopping`` rule; beam 1 is greedy search), so hypotheses and scores equal ``generate``'s with the same
settings. The differences are in cost only: the prefix runs once per utterance instead of once per beam, its KV
is shared by the beams (``prefix_attention.py``), finished utterances leave the batch, and each utterance may
have its own token budget.
"""
import logging
from typing import NamedTuple

import torch

from espnet_speechllm.decode.config import BeamSearchConfig
from espnet_speechllm.decode.constraints import SearchConstraints
from espnet_speechllm.decode.ctc_prefix import CTCPrefixRows
from espnet_speechllm.decode.prefix_attention import (
    SharedPrefixKV,
    shared_prefix_attention,
    supports_shared_prefix,
)

logger = logging.getLogger(__name__)

_NEG = -1.0e9  # HF's offset that takes a candidate out of the running


class Hypothesis(NamedTuple):
    """One decoded hypothesis: token ids without EOS, and its length-normalized log-probability."""

    token_ids: list[int]
    score: float


def unwrap_causal_lm(model: torch.nn.Module) -> torch.nn.Module:
    """The HF causal LM inside a peft wrapper; LoRA layers live in it, so calling it applies the adapters."""
    peft_config = getattr(model, "active_peft_config", None)
    if hasattr(model, "get_base_model") and not getattr(peft_config, "is_prompt_learning", False):
        return model.get_base_model()
    return model


def left_padded_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """HF ``generate``'s position ids: cumulative sum of the mask minus one, 0 on padding. (B, T) -> (B, T)"""
    position_ids = attention_mask.long().cumsum(-1) - 1  # (B, T)
    return position_ids.masked_fill(attention_mask == 0, 0)


class _PrefixLM:
    """The LM side of the search: runs the prefixes once, then one token per beam row with a KV cache.

    Rows are ``beam`` per live utterance, utterance-major; before the first step there is one row per utterance.
    With ``shared_prefix`` the prefix KV is kept once per utterance (``SharedPrefixKV``); otherwise an HF
    ``DynamicCache`` holds a full copy per row and the 2D attention mask grows as in ``generate``.
    """

    def __init__(self, model, inputs_embeds, attention_mask, beam: int, budget: int, shared_prefix: bool):
        self.model = model
        self.beam = beam
        self.shared_prefix = shared_prefix
        num_utts, prefix_len = attention_mask.shape
        self.prefix_len = prefix_len
        position_ids = left_padded_positions(attention_mask)  # (U, T)
        self.next_position = position_ids[:, -1] + 1  # (U,)
        # As generate does, an all-ones mask is dropped (plain causal attention).
        padded = not bool(attention_mask.all())
        mask = attention_mask.long() if padded else None
        out = model(inputs_embeds=inputs_embeds, attention_mask=mask, position_ids=position_ids,
                    use_cache=True, logits_to_keep=1)
        self.first_logits = out.logits[:, -1, :].float()  # (U, V)
        self.utt_mask = None
        if shared_prefix:
            self.kv = SharedPrefixKV.from_hf_cache(out.cache, mask)
        else:
            self.cache = out.cache
            if padded:
                self.utt_mask = torch.ones(num_utts, prefix_len + budget, dtype=torch.long,
                                           device=attention_mask.device)  # (U, T + L)
                self.utt_mask[:, :prefix_len] = mask

    def select(self, utts: torch.Tensor | None, rows: torch.Tensor) -> None:
        """Next step's rows: ``rows`` (N',) index the current rows; ``utts`` the kept utterances (None: all)."""
        if utts is not None:
            self.next_position = self.next_position.index_select(0, utts)
            if self.utt_mask is not None:
                self.utt_mask = self.utt_mask.index_select(0, utts)
        if self.shared_prefix:
            self.kv.select(utts, rows)
        else:
            self.cache.reorder_cache(rows)

    def step(self, tokens: torch.Tensor, t: int) -> torch.Tensor:
        """Feed token ``t`` (0-based) of every row: tokens (N,) -> next-token logits (N, V)."""
        positions = (self.next_position + t).repeat_interleave(self.beam)[:, None]  # (N, 1)
        if self.shared_prefix:
            with shared_prefix_attention(self.model):
                out = self.model(input_ids=tokens[:, None], position_ids=positions, use_cache=False,
                                 prefix_kv=self.kv)
        else:
            mask = None
            if self.utt_mask is not None:
                mask = self.utt_mask[:, : self.prefix_len + t + 1].repeat_interleave(self.beam, 0)  # (N, T+t+1)
            out = self.model(input_ids=tokens[:, None], attention_mask=mask, position_ids=positions,
                             cache=self.cache, use_cache=True)
        return out.logits[:, -1, :].float()  # (N, V)


class CTCInputs(NamedTuple):
    """CTC posteriors for joint decoding: log_probs (B, T, V) over the LLM's tokens, lengths (B,), the blank."""

    log_probs: torch.Tensor
    lengths: torch.Tensor
    blank_id: int


class BeamSearch:
    """Batched beam search (greedy search for ``beam_size == 1``) over a causal LM from prefix embeddings.

    Args:
        model: HF causal LM (e.g. ``LlamaForCausalLM``), possibly a peft ``PeftModel``; put it in eval mode.
        config: decoding options; ``config.shared_prefix_kv`` keeps the prefix KV once per utterance (see
            ``prefix_attention.py``) when the model supports it (full attention in all layers).
    """

    def __init__(self, model: torch.nn.Module, config: BeamSearchConfig):
        self.model = unwrap_causal_lm(model)
        self.config = config
        hf_config = getattr(self.model, "config", None)
        gen_config = getattr(self.model, "generation_config", None)
        eos = config.eos_ids()
        if eos is None:
            eos = getattr(gen_config, "eos_token_id", None)
            if eos is None:
                eos = getattr(hf_config, "eos_token_id", None)
            eos = [eos] if isinstance(eos, int) else eos
        if not eos:
            raise ValueError("the model has no eos_token_id: set eos_token_id in the decoding config")
        self.eos_ids = list(eos)
        pad = config.pad_token_id if config.pad_token_id is not None else getattr(gen_config, "pad_token_id", None)
        self.fill_id = pad if pad is not None else self.eos_ids[0]
        self.constraints = SearchConstraints.from_config(config, self.eos_ids)
        self.shared_prefix = config.shared_prefix_kv and supports_shared_prefix(self.model)
        if config.shared_prefix_kv and not self.shared_prefix:
            logger.info("%s has sliding-window/linear attention layers: using a per-beam KV cache",
                        type(self.model).__name__)

    @torch.inference_mode()
    def __call__(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        max_new_tokens: int | torch.Tensor | list[int] | None = None,
        ctc: "CTCInputs | None" = None,
    ) -> list[list[Hypothesis]]:
        """Decode a batch of prefixes.

        Args:
            inputs_embeds: ``(B, T, D)`` prefix embeddings, LEFT-padded, in the model's dtype.
            attention_mask: ``(B, T)`` 1 on prefix positions, 0 on (left) padding.
            max_new_tokens: int or ``(B,)`` per-utterance token budget (EOS included); None: the config's.
            ctc: CTC posteriors over the LLM's vocabulary for joint CTC/attention decoding (used when
                ``config.ctc_weight > 0``; then beam 1 runs as a beam search of width 1).

        Returns:
            For each utterance, its ``nbest`` hypotheses, best first.
        """
        batch_size, prefix_len, _ = inputs_embeds.shape
        if tuple(attention_mask.shape) != (batch_size, prefix_len):
            raise ValueError(f"attention_mask {tuple(attention_mask.shape)} does not match inputs_embeds (B, T) = "
                             f"{(batch_size, prefix_len)}")
        if batch_size == 0:
            return []
        if not bool(attention_mask[:, -1].all()):
            raise ValueError("the prefix batch must be LEFT-padded: attention_mask[:, -1] must be all 1")
        max_len = self._budgets(max_new_tokens, batch_size, inputs_embeds.device)  # (B,)
        if self.config.ctc_weight > 0:
            if ctc is None:
                raise ValueError(f"ctc_weight={self.config.ctc_weight} needs CTC posteriors (ctc=CTCInputs(...))")
            if ctc.log_probs.shape[0] != batch_size or ctc.log_probs.shape[-1] < self.model.config.vocab_size:
                raise ValueError(f"CTC posteriors {tuple(ctc.log_probs.shape)} do not match {batch_size} "
                                 f"utterances and the LLM's {self.model.config.vocab_size} tokens")
            return self._beam(inputs_embeds, attention_mask, max_len, ctc)
        if self.config.beam_size == 1:
            return self._greedy(inputs_embeds, attention_mask, max_len)
        return self._beam(inputs_embeds, attention_mask, max_len)

    def _budgets(self, max_new_tokens, batch_size: int, device) -> torch.Tensor:
        if max_new_tokens is None:
            max_new_tokens = self.config.max_new_tokens
        max_len = torch.as_tensor(max_new_tokens, dtype=torch.long, device=device).reshape(-1)
        if max_len.numel() == 1:
            max_len = max_len.expand(batch_size)
        if max_len.numel() != batch_size:
            raise ValueError(f"max_new_tokens has {max_len.numel()} values for a batch of {batch_size} utterances")
        if int(max_len.min()) < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_len.tolist()}")
        return max_len.contiguous()

    def _no_speech(self, logp: torch.Tensor) -> torch.Tensor:
        """Rows whose LLM ends at once with probability above ``no_speech_threshold``: (N, V) -> (N,) bool."""
        threshold = self.config.no_speech_threshold
        if threshold is None:
            return torch.zeros(logp.shape[0], dtype=torch.bool, device=logp.device)
        return logp[:, self.eos_ids].exp().sum(dim=-1) > threshold

    def _banned(self, history: torch.Tensor, vocab_size: int) -> torch.Tensor | None:
        """Forbidden next tokens (HF NoRepeatNGram + MinNewTokens processors, the loop rule): (N, t) -> (N, V)."""
        return self.constraints.mask(history, vocab_size)

    # ------------------------------------------------------------------------------------------------------------
    # greedy search (beam 1)

    def _greedy(self, inputs_embeds, attention_mask, max_len) -> list[list[Hypothesis]]:
        """HF greedy search; score = sum of token log-probs / length ** length_penalty (length incl. EOS)."""
        device = inputs_embeds.device
        num_utts = inputs_embeds.shape[0]
        budget = int(max_len.max())
        eos = torch.tensor(self.eos_ids, device=device)
        lm = _PrefixLM(self.model, inputs_embeds, attention_mask, 1, budget, self.shared_prefix)
        logits = lm.first_logits  # (U, V)
        utt = torch.arange(num_utts, device=device)  # (U,) original index of each live utterance
        tokens = torch.full((num_utts, budget), self.fill_id, dtype=torch.long, device=device)  # (U, L)
        sum_logp = torch.zeros(num_utts, device=device)  # (U,)
        results: list[list[Hypothesis]] = [[] for _ in range(num_utts)]
        for t in range(budget):
            banned = self._banned(tokens[:, :t], logits.shape[-1])
            processed = logits if banned is None else logits.masked_fill(banned, float("-inf"))
            next_tokens = processed.argmax(dim=-1)  # (U,)
            logp = torch.log_softmax(logits, dim=-1)  # (U, V)
            if t == 0:
                next_tokens = torch.where(self._no_speech(logp), self.eos_ids[0], next_tokens)
            sum_logp = sum_logp + logp.gather(1, next_tokens[:, None])[:, 0]
            tokens[:, t] = next_tokens
            is_eos = torch.isin(next_tokens, eos)  # (U,)
            done = is_eos | (max_len <= t + 1)  # (U,)
            if bool(done.any()):
                scores = (sum_logp / (float(t + 1) ** self.config.length_penalty)).tolist()
                toks, ends, orig = tokens[:, : t + 1].tolist(), is_eos.tolist(), utt.tolist()
                for r in done.nonzero()[:, 0].tolist():
                    results[orig[r]] = [Hypothesis(toks[r][:-1] if ends[r] else toks[r], scores[r])]
                keep = (~done).nonzero()[:, 0]  # (U',)
                if keep.numel() == 0:
                    break
                utt, tokens, sum_logp, max_len = utt[keep], tokens[keep], sum_logp[keep], max_len[keep]
                next_tokens = next_tokens[keep]
                lm.select(keep, keep)
            logits = lm.step(next_tokens, t)  # (U, V)
        return results

    # ------------------------------------------------------------------------------------------------------------
    # beam search

    def _beam(self, inputs_embeds, attention_mask, max_len, ctc: "CTCInputs | None" = None
              ) -> list[list[Hypothesis]]:
        """HF ``_beam_search`` over the live utterances (U), K beams each, C candidates per step; with ``ctc``,
        each token's log-probability is the joint CTC/attention score (``decode/ctc_prefix.py``)."""
        cfg = self.config
        device = inputs_embeds.device
        num_utts = inputs_embeds.shape[0]
        beam = cfg.beam_size
        length_penalty = cfg.length_penalty
        early_stopping = cfg.early_stopping
        budget = int(max_len.max())
        eos = torch.tensor(self.eos_ids, device=device)
        num_cand = max(2, 1 + len(self.eos_ids)) * beam
        top_beam = torch.arange(num_cand, device=device) < beam  # (C,) candidates that may finish
        lm = _PrefixLM(self.model, inputs_embeds, attention_mask, beam, budget, self.shared_prefix)
        logits = lm.first_logits  # (U, V)
        vocab = logits.shape[-1]

        utt = torch.arange(num_utts, device=device)  # (U,) original index of each live utterance
        run_seq = torch.full((num_utts, beam, budget), self.fill_id, dtype=torch.long, device=device)  # (U, K, L)
        run_score = torch.full((num_utts, beam), _NEG, device=device)  # (U, K)
        run_score[:, 0] = 0.0  # the beams start identical: only the first one expands
        fin_seq = run_seq.clone()  # (U, K, L) finished hypotheses, best first
        fin_score = torch.full((num_utts, beam), _NEG, device=device)  # (U, K)
        fin_len = torch.zeros((num_utts, beam), dtype=torch.long, device=device)  # (U, K) incl. EOS
        fin_flag = torch.zeros((num_utts, beam), dtype=torch.bool, device=device)  # (U, K)
        improvable = torch.ones((num_utts, 1), dtype=torch.bool, device=device)  # (U, 1)
        # early_stopping="never" bounds a running beam's score with the longest possible length
        best_len = max_len.double() ** length_penalty if early_stopping == "never" and length_penalty > 0 else None
        results: list[list[Hypothesis]] = [[] for _ in range(num_utts)]
        prefix_scorer = None
        if ctc is not None:
            prefix_scorer = CTCPrefixRows(ctc.log_probs[:, :, :vocab], ctc.lengths, ctc.blank_id, self.eos_ids[0],
                                          beam, cfg.ctc_pre_beam)

        for t in range(budget):
            num_live = utt.shape[0]
            logp = torch.log_softmax(logits, dim=-1)  # (U*K, V); (U, V) at t == 0
            if t == 0:
                logp = logp.repeat_interleave(beam, dim=0)  # (U*K, V) every beam sees the same prefix
            silent = self._no_speech(logp) if t == 0 else None  # (U*K,)
            if prefix_scorer is not None:
                ctc_scores = prefix_scorer.scores(utt, logp)  # (U*K, V)
                ctc_scores[:, self.eos_ids[1:]] = ctc_scores[:, self.eos_ids[:1]]  # every EOS ends the same way
                logp = CTCPrefixRows.combine(logp, ctc_scores, cfg.ctc_weight)
            if silent is not None and bool(silent.any()):
                end_logp = logp[silent, self.eos_ids[0]]
                logp[silent] = float("-inf")
                logp[silent, self.eos_ids[0]] = end_logp
            banned = self._banned(run_seq[:, :, :t].reshape(num_live * beam, t), vocab)
            if banned is not None:
                logp = logp.masked_fill(banned, float("-inf"))
            acc = (logp.view(num_live, beam, vocab) + run_score[:, :, None]).view(num_live, beam * vocab)

            # top-C continuations over all beams of an utterance
            cand_score, cand_index = torch.topk(acc, k=num_cand)  # (U, C)
            cand_beam = cand_index // vocab  # (U, C)
            cand_token = cand_index % vocab  # (U, C)
            cand_seq = run_seq.gather(1, cand_beam[:, :, None].expand(-1, -1, budget))  # (U, C, L)
            cand_seq[:, :, t] = cand_token
            hits = torch.isin(cand_token, eos) | (max_len <= t + 1)[:, None]  # (U, C) ends here

            # the K best candidates that did not end keep running
            cand_run_score = cand_score + hits.to(torch.float32) * _NEG  # (U, C)
            next_index = torch.topk(cand_run_score, k=beam)[1]  # (U, K)
            run_seq = cand_seq.gather(1, next_index[:, :, None].expand(-1, -1, budget))  # (U, K, L)
            run_score = cand_run_score.gather(1, next_index)  # (U, K)
            src_beam = cand_beam.gather(1, next_index)  # (U, K)
            if prefix_scorer is not None:
                prefix_scorer.select(utt, src_beam, run_seq[:, :, t])

            # candidates that ended (among the top K) compete with the finished hypotheses
            fin_cand = cand_score / (float(t + 1) ** length_penalty)  # (U, C)
            if early_stopping is True:
                fin_cand = fin_cand + fin_flag.all(dim=-1, keepdim=True).to(torch.float32) * _NEG
            fin_cand = fin_cand + (~improvable).to(torch.float32) * _NEG
            just_finished = hits & top_beam  # (U, C)
            fin_cand = fin_cand + (~just_finished) * _NEG
            merged_score = torch.cat((fin_score, fin_cand), dim=1)  # (U, K+C)
            keep_index = torch.topk(merged_score, k=beam)[1]  # (U, K)
            fin_score = merged_score.gather(1, keep_index)
            fin_seq = torch.cat((fin_seq, cand_seq), dim=1).gather(1, keep_index[:, :, None].expand(-1, -1, budget))
            fin_flag = torch.cat((fin_flag, just_finished), dim=1).gather(1, keep_index)
            fin_len = torch.cat((fin_len, torch.full_like(cand_beam, t + 1)), dim=1).gather(1, keep_index)

            # can the best running beam still beat the worst finished hypothesis?
            if best_len is None:
                best_possible = run_score[:, :1] / (float(t + 1) ** length_penalty)  # (U, 1)
            else:
                best_possible = run_score[:, :1] / best_len.to(torch.float32)[:, None]  # (U, 1)
            worst_finished = torch.where(fin_flag, fin_score.min(dim=1, keepdim=True)[0], _NEG)  # (U, K)
            improvable = improvable & (best_possible > worst_finished).any(dim=-1, keepdim=True)  # (U, 1)
            done = ~improvable[:, 0] | hits.all(dim=-1)  # (U,)
            if early_stopping is True:
                done = done | fin_flag.all(dim=-1)

            keep = None
            if bool(done.any()):
                self._collect(results, utt[done], fin_seq[done], fin_score[done], fin_len[done])
                keep = (~done).nonzero()[:, 0]  # (U',)
                if keep.numel() == 0:
                    break
                utt, max_len, run_seq, run_score, src_beam = (
                    utt[keep], max_len[keep], run_seq[keep], run_score[keep], src_beam[keep])
                fin_seq, fin_score, fin_len, fin_flag, improvable = (
                    fin_seq[keep], fin_score[keep], fin_len[keep], fin_flag[keep], improvable[keep])
                best_len = None if best_len is None else best_len[keep]
                src_utt = keep  # (U',) row of each kept utterance among the current ones
            else:
                src_utt = torch.arange(num_live, device=device)  # (U,)
            # rows of the next step: beam k of utterance u continues row src_beam[u, k] of its utterance
            if t == 0:
                rows = src_utt.repeat_interleave(beam)  # (U'*K,) one row per utterance before the first step
            else:
                rows = (src_utt[:, None] * beam + src_beam).reshape(-1)  # (U'*K,)
            lm.select(keep, rows)
            logits = lm.step(run_seq[:, :, t].reshape(-1), t)  # (U'*K, V)
        return results

    def _collect(self, results, utts, fin_seq, fin_score, fin_len) -> None:
        """Store the n-best of finished utterances: utts (D,), fin_* (D, K, ...) best first."""
        nbest = self.config.nbest
        seqs = fin_seq[:, :nbest].tolist()
        scores = fin_score[:, :nbest].tolist()
        lengths = fin_len[:, :nbest].tolist()
        eos = set(self.eos_ids)
        for d, u in enumerate(utts.tolist()):
            hyps = []
            for seq, score, length in zip(seqs[d], scores[d], lengths[d]):
                ids = seq[:length]
                hyps.append(Hypothesis(ids[:-1] if ids and ids[-1] in eos else ids, score))
            results[u] = hyps
