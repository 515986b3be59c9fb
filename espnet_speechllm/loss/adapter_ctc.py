"""CTC on the adapter outputs against the LLM's own embedding table (an auxiliary loss; not in the paper).

The LLM reads the adapter outputs the way its in-context copy skill reads a stretched copy of the transcript:
each adapter frame is useful when it is close to the embedding of the token spoken there, and a frame between
tokens is best a "filler" the LLM skips. The matching loss (Sec. 2.2) compares the transcript with a learned
cross-attention *of* the adapter outputs, whose value/output projections can absorb the mapping, so it does not
shape the adapter outputs themselves into token embeddings. This loss does, alignment-free:

    logits[t, v] = cos(adapter_out[t], E[v]) / temperature          (E: the LLM's input embeddings, fixed)
    loss = CTC(logits, transcript tokens, blank = ``blank_id``)

The blank is a real token of the LLM (default: its unk token, which plain text never contains and which the
shipped stand-in LLM learnt as the filler between stretched copies), so a blank frame is a frame the LLM has
seen and learnt to skip. Non-speech utterances (empty transcripts) teach all-blank outputs.

Cosine, not dot product: the loss fixes the direction of each frame; the scale is left to the matching loss's
MSE and to CE. Lengths too short for their transcript are zeroed (``zero_infinity``), and counted in the stats.
"""
from typing import Dict, List

import torch
import torch.nn.functional as F

ADAPTER_CTC_KEYS = ("weight", "temperature", "blank_id")


def greedy_ctc_ids(best: torch.Tensor, blank_id: int) -> List[int]:
    """Greedy CTC read-out of one utterance's (T,) best classes: repeats merged, then blanks dropped."""
    return [t for t in torch.unique_consecutive(best).tolist() if t != blank_id]


class AdapterCTCLoss(torch.nn.Module):
    """CTC between adapter frames and transcript tokens, with logits from the LLM's embedding table.

    Args:
        blank_id: the LLM token used as the CTC blank (must not be a transcript token).
        temperature: cosine logits are divided by it (0.1: logits in [-10, 10]).
    """

    def __init__(self, blank_id: int, temperature: float = 0.1):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"adapter_ctc_conf.temperature={temperature}: must be > 0")
        self.blank_id = int(blank_id)
        self.temperature = float(temperature)

    def logits(self, speech: torch.Tensor, embedding_table: torch.Tensor) -> torch.Tensor:
        """(B, T', D) adapter outputs, (V, D) embeddings -> (B, T', V) cosine logits / temperature."""
        table = F.normalize(embedding_table.detach().float(), dim=-1)
        return F.normalize(speech.float(), dim=-1) @ table.T / self.temperature

    def log_probs(self, speech: torch.Tensor, embedding_table: torch.Tensor) -> torch.Tensor:
        """(B, T', D) adapter outputs -> (B, T', V) CTC log-posteriors (training loss and joint decoding)."""
        return self.logits(speech, embedding_table).log_softmax(-1)

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor, text: torch.Tensor,
                text_lengths: torch.Tensor, embedding_table: torch.Tensor) -> Dict[str, torch.Tensor]:
        valid = torch.arange(text.size(1), device=text.device)[None, :] < text_lengths[:, None]  # (B, L)
        if bool(((text == self.blank_id) & valid).any()):
            raise ValueError(f"adapter_ctc_conf.blank_id={self.blank_id} occurs in a transcript: choose a token "
                             "that plain text never contains (e.g. the tokenizer's unk)")
        log_probs = self.log_probs(speech, embedding_table)  # (B, T', V)
        too_short = speech_lengths < text_lengths
        loss = F.ctc_loss(log_probs.transpose(0, 1), text.clamp(min=0), speech_lengths, text_lengths,
                          blank=self.blank_id, reduction="sum", zero_infinity=True)
        n_tokens = (text_lengths + 1).sum()  # per target token (+1: empty transcripts still count)
        return {"loss": loss / n_tokens, "too_short": too_short.sum().detach()}
