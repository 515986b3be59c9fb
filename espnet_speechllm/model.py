"""SpeechLLM: speech encoder -> adapter -> LLM, trained with CE (+ matching loss), ESPnet model interface.

Paper: Pham et al., "A Comprehensive Solution to Connect Speech Encoder and Large Language Model for ASR"
(arXiv 2406.17272). LLM input per utterance (docs/training.md, "Notes on the model"):

    [BOS] prompt-before | adapter(encoder(speech)) | prompt-after | transcript EOS

CE is computed on the transcript tokens and EOS only. An empty transcript (non-speech, Sec. 2.3) leaves
only EOS as the target.
"""
import logging
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from espnet_speechllm.adapter.abs_adapter import AbsAdapter
from espnet_speechllm.encoder.abs_encoder import AbsEncoder
from espnet_speechllm.llm.abs_llm import AbsLLM
from espnet_speechllm.loss.adapter_ctc import AdapterCTCLoss
from espnet_speechllm.loss.matching import MatchingLoss
from espnet_speechllm.utils.base_weights import digest_tensor, short_hex
from espnet_speechllm.utils.cli import UserError

logger = logging.getLogger(__name__)

IGNORE_ID = -100
BASE_SIDES = ("encoder", "llm")
DIGEST_KEY = "base_weights_digest"


class BaseWeightsMismatchError(UserError):
    """A checkpoint loaded on top of other frozen base weights than it was trained on."""


class SpeechLLMModel(AbsESPnetModel):
    """The paper's model. ``forward`` returns ESPnet's ``(loss, stats, weight)``.

    Args:
        encoder, adapter, llm: the three components (built by ``SpeechLLMTask.build_model``).
        matching_loss: optional ``MatchingLoss`` (Sec. 2.2); its term is added to CE times
            ``matching_weight``.
        adapter_ctc: optional ``AdapterCTCLoss`` (loss/adapter_ctc.py, not in the paper): CTC of the adapter
            frames against the LLM's embedding table; its term is added times ``adapter_ctc_weight``.
        save_frozen_weights: if False (default), frozen weights that were loaded from a pretrained dir
            are left out of checkpoints and reloaded from that dir when the model is built (a LoRA
            checkpoint of HuBERT-large + Vicuna-7B is then tens of MB, not 14 GB).
        allow_base_weight_mismatch: load a checkpoint whose base weights (the frozen weights it leaves out) were
            other than those in the model dirs now, with a warning instead of an error.
        text_input_noise: in training, the probability that a transcript token fed to the LLM (the teacher-forced
            history, not the target) is replaced by a random vocabulary token. The LLM can then not complete a
            sentence from its text prior alone and has to read the speech; decoding also feeds it its own errors.
    """

    def __init__(
        self,
        encoder: AbsEncoder,
        adapter: AbsAdapter,
        llm: AbsLLM,
        matching_loss: Optional[MatchingLoss] = None,
        matching_weight: float = 0.0,
        adapter_ctc: Optional[AdapterCTCLoss] = None,
        adapter_ctc_weight: float = 0.0,
        save_frozen_weights: bool = False,
        text_input_noise: float = 0.0,
        allow_base_weight_mismatch: bool = False,
    ):
        super().__init__()
        if not 0.0 <= text_input_noise < 1.0:
            raise ValueError(f"model_conf.text_input_noise={text_input_noise}: a probability in [0, 1)")
        self.text_input_noise = text_input_noise
        self.encoder = encoder
        self.adapter = adapter
        self.llm = llm
        self.matching_loss = matching_loss
        self.matching_weight = matching_weight
        self.adapter_ctc = adapter_ctc
        self.adapter_ctc_weight = adapter_ctc_weight
        self.register_buffer("_before_ids", torch.tensor(llm.prompt.before_ids, dtype=torch.long), persistent=False)
        self.register_buffer("_after_ids", torch.tensor(llm.prompt.after_ids, dtype=torch.long), persistent=False)
        self._reloadable_keys = set()
        if not save_frozen_weights:
            for prefix, side in (("encoder.", encoder), ("llm.", llm)):
                self._reloadable_keys.update(prefix + key for key in side.reloadable_keys())
        # The base weights a checkpoint relies on, per side, travel inside it (utils/base_weights.py).
        self.base_dirs = {side: None if save_frozen_weights else getattr(self, side).base_model_dir()
                          for side in BASE_SIDES}
        self.register_buffer(DIGEST_KEY, torch.stack([digest_tensor(self.base_dirs[s]) for s in BASE_SIDES]))
        self.allow_base_weight_mismatch = allow_base_weight_mismatch

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        state = super().state_dict(*args, destination=destination, prefix=prefix, keep_vars=keep_vars)
        for key in self._reloadable_keys:
            state.pop(prefix + key, None)
        return state

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        state_dict = dict(state_dict)
        self._check_base_weights(state_dict.pop(DIGEST_KEY, None))
        result = super().load_state_dict(state_dict, strict=False, assign=assign)
        missing = [k for k in result.missing_keys if k not in self._reloadable_keys and k != DIGEST_KEY]
        if strict and (missing or result.unexpected_keys):
            raise RuntimeError(
                f"checkpoint does not fit the model built from the config: missing {missing[:5]} "
                f"({len(missing)} in all), unexpected {result.unexpected_keys[:5]} "
                f"({len(result.unexpected_keys)} in all)"
            )
        return result

    def _check_base_weights(self, saved: Optional[torch.Tensor]) -> None:
        """A checkpoint made on other base weights than the model dirs hold now is refused (or, when allowed,
        warned about): its LoRA deltas and adapter were trained against those weights."""
        if saved is None:
            logger.warning("the checkpoint records no base-weight digest (made by an older version): the frozen "
                           "weights it relies on cannot be checked")
            return
        for i, side in enumerate(BASE_SIDES):
            now, then = self.base_weights_digest[i], saved[i].to(self.base_weights_digest)
            if not bool(now.any()) or not bool(then.any()) or torch.equal(now, then.round()):
                continue  # a side that saves its weights whole depends on no dir
            message = (f"the checkpoint's {side} was trained on other base weights (digest {short_hex(then)}) than "
                       f"{self.base_dirs[side]} holds now (digest {short_hex(now)}): was that dir rebuilt or replaced "
                       "(e.g. stage 7 with --force true) after training? Retrain, restore the old weights, or set "
                       "model_conf.allow_base_weight_mismatch: true (speechllm_inference: "
                       "--allow_base_weight_mismatch true) to load it anyway")
            if not self.allow_base_weight_mismatch:
                raise BaseWeightsMismatchError(message)
            logger.warning(message)

    # ------------------------------------------------------------------ pieces
    def encode_speech(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, S) waveform -> (B, T', D_llm) adapter output and its lengths."""
        hidden, lengths = self.encoder(speech, speech_lengths)  # (B, T, D_enc)
        out, out_lengths = self.adapter(hidden, lengths)  # (B, T', D_llm)
        return out, out_lengths

    def _prompt_embeddings(self, dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.llm.embed(self._before_ids).to(dtype), self.llm.embed(self._after_ids).to(dtype)

    def build_prefix(self, speech_emb: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """LEFT-padded ``[BOS] before speech after`` embeddings (B, P, D) and attention mask (B, P) for decoding."""
        before, after = self.llm.embed(self._before_ids), self.llm.embed(self._after_ids)  # in the LLM's dtype
        dtype = before.dtype
        rows = [torch.cat([before, speech_emb[i, : speech_lengths[i]].to(dtype), after]) for i in range(len(speech_emb))]
        return _pad_rows(rows, left=True)

    def build_training_inputs(
        self, speech_emb: torch.Tensor, speech_lengths: torch.Tensor, text: torch.Tensor, text_lengths: torch.Tensor,
        text_emb: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """RIGHT-padded inputs (B, L, D), attention mask (B, L) and next-token labels (B, L)."""
        dtype = text_emb.dtype
        before, after = self._prompt_embeddings(dtype)
        eos = self.llm.embed(torch.tensor([self.llm.eos_token_id], device=text.device)).to(dtype)  # (1, D)
        rows, labels = [], []
        for i in range(len(speech_emb)):
            n_text = int(text_lengths[i])
            rows.append(torch.cat([before, speech_emb[i, : speech_lengths[i]].to(dtype), after, text_emb[i, :n_text], eos]))
            # Position p predicts token p+1: the last prompt position predicts the first transcript token.
            n_prompt = before.size(0) + int(speech_lengths[i]) + after.size(0)
            label = torch.full((rows[-1].size(0),), IGNORE_ID, dtype=torch.long, device=text.device)
            label[n_prompt - 1 : n_prompt - 1 + n_text] = text[i, :n_text]
            label[n_prompt - 1 + n_text] = self.llm.eos_token_id
            labels.append(label)
        inputs, mask = _pad_rows(rows, left=False)
        return inputs, mask, torch.nn.utils.rnn.pad_sequence(labels, batch_first=True, padding_value=IGNORE_ID)

    # ------------------------------------------------------------------ ESPnet interface
    def forward(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, text: torch.Tensor, text_lengths: torch.Tensor,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        batch_size = speech.size(0)
        text = text[:, : int(text_lengths.max())] if text.size(1) else text
        speech_emb, speech_lengths_out = self.encode_speech(speech, speech_lengths)  # (B, T', D)
        text_emb = self.llm.embed(text)  # (B, L, D)
        history = self._noisy_history(text)
        history_emb = text_emb if history is text else self.llm.embed(history)  # embedded once without noise
        inputs, mask, labels = self.build_training_inputs(speech_emb, speech_lengths_out, text, text_lengths,
                                                          history_emb)

        logits, targets = self._target_logits(inputs, mask, labels)  # (N, V), (N,)
        loss_ce = F.cross_entropy(logits.float(), targets)
        acc = (logits.argmax(-1) == targets).float().mean()

        stats = {"loss_ce": loss_ce.detach(), "acc": acc.detach()}
        if not self.training and batch_size > 1:
            stats["acc_mismatched"] = self.mismatched_accuracy(speech_emb, speech_lengths_out, text, text_lengths,
                                                               text_emb)
        loss = loss_ce
        if self.matching_loss is not None:
            if bool((text_lengths > 0).any()):
                match = self.matching_loss(speech_emb, speech_lengths_out, text_emb, text_lengths)
                loss = loss + self.matching_weight * match["loss"]
                stats.update(loss_match=match["loss"].detach(), match_mse=match["mse"], match_cos=match["cos"])
            else:
                # Only non-speech here: nothing to match, but DDP needs every parameter in the graph.
                loss = loss + 0.0 * sum(p.sum() for p in self.matching_loss.parameters())
        if self.adapter_ctc is not None:
            ctc = self.adapter_ctc(speech_emb, speech_lengths_out, text, text_lengths, self.llm.embedding_table())
            loss = loss + self.adapter_ctc_weight * ctc["loss"]
            stats.update(loss_adapter_ctc=ctc["loss"].detach(), adapter_ctc_too_short=ctc["too_short"].float())
        stats["loss"] = loss.detach()
        loss, stats, weight = force_gatherable((loss, stats, batch_size), loss.device)
        return loss, stats, weight

    def _noisy_history(self, text: torch.Tensor) -> torch.Tensor:
        """``text`` with a ``text_input_noise`` share of its tokens replaced by random ones (training only)."""
        if not self.training or self.text_input_noise <= 0:
            return text
        replace = torch.rand(text.shape, device=text.device) < self.text_input_noise
        return torch.where(replace, torch.randint_like(text, len(self.llm.tokenizer)), text)

    def _target_logits(self, inputs: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor
                       ) -> Tuple[torch.Tensor, torch.Tensor]:
        """LM-head logits (N, V) at the N positions that have a target, and the targets (N,)."""
        # Run the decoder stack, then the LM head only where there is a target (saves the (B, L, V) logits).
        hidden = self.llm.decoder_forward(inputs, mask)  # (B, L, D)
        target_pos = labels != IGNORE_ID  # (B, L)
        return self.llm.lm_head(hidden[target_pos]), labels[target_pos]

    @torch.no_grad()
    def mismatched_accuracy(self, speech_emb: torch.Tensor, speech_lengths: torch.Tensor, text: torch.Tensor,
                            text_lengths: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """Token accuracy with each utterance's speech replaced by the next utterance's in the batch.

        The "does it listen" statistic: what the text prior alone reaches. A model that ignores the audio
        scores ``acc`` ~= ``acc_mismatched``; the gap is what it reads from the speech.
        """
        inputs, mask, labels = self.build_training_inputs(
            speech_emb.roll(1, dims=0), speech_lengths.roll(1, dims=0), text, text_lengths, text_emb)
        logits, targets = self._target_logits(inputs, mask, labels)
        return (logits.argmax(-1) == targets).float().mean()

    def collect_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs) -> Dict[str, torch.Tensor]:
        return {"feats": speech, "feats_lengths": speech_lengths}


def _pad_rows(rows: List[torch.Tensor], left: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stack (L_i, D) rows into (B, L, D) with zeros and a (B, L) long attention mask."""
    max_len = max(r.size(0) for r in rows)
    out = rows[0].new_zeros((len(rows), max_len, rows[0].size(1)))
    mask = torch.zeros((len(rows), max_len), dtype=torch.long, device=rows[0].device)
    for i, r in enumerate(rows):
        sl = slice(max_len - r.size(0), max_len) if left else slice(0, r.size(0))
        out[i, sl] = r
        mask[i, sl] = 1
    return out, mask
