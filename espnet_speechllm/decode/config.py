"""Options of the constrained beam search (Pham et al., arXiv 2406.17272, Sec. "Reducing insertion errors").

The paper decodes with beam search plus two constraints against insertion errors: n-gram non-repetition and a
length penalty. The option names and their semantics are those of HF transformers' ``generate`` so that a
decoding config reads the same in both, and the decoder's output equals ``generate``'s with the same settings.
"""
import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

import yaml

from espnet_speechllm.utils.cli import UserError


@dataclass
class BeamSearchConfig:
    """Decoding options; ``from_dict`` rejects unknown keys by name.

    Attributes:
        beam_size: number of beams per utterance; 1 is greedy search (HF ``num_beams=1``).
        nbest: hypotheses returned per utterance (<= beam_size), best first.
        max_new_tokens: generated tokens at most (EOS included). The call can override it per utterance, e.g.
            tied to the audio duration (``max_tokens_per_second * seconds + max_tokens_constant``).
        min_new_tokens: EOS is banned before this many tokens; keep 0 so that non-speech input can produce the
            empty hypothesis.
        no_repeat_ngram_size: n of the n-gram non-repetition constraint (HF semantics: an n-gram may occur once
            anywhere in the hypothesis); 0 disables it. Real references repeat short n-grams ("I'm ... I'm"): on
            LibriSpeech dev with the Vicuna tokenizer, n = 3 bans 3.3% of the correct transcripts (docs/decoding.md).
        no_loop_ngram_size: n of the loop constraint: a token is banned when the n-gram it completes equals an
            n-gram at distance 1..n (overlapping or directly before it), i.e. when the hypothesis would end in
            ``n + p`` tokens of period ``p <= n``. Repeats further apart are allowed. 0 disables it. The two
            n-gram rules combine: a token is banned when either bans it.
        length_penalty: final score = sum of token log-probs / (generated length incl. EOS) ** length_penalty;
            > 0 favours longer hypotheses, < 0 shorter ones (HF semantics).
        early_stopping: HF's beam stopping rule: False (heuristic: stop once no running beam can beat the worst
            finished one at its current length), True (stop once ``beam_size`` hypotheses are finished) or
            "never" (canonical: bound with the longest possible length when length_penalty > 0).
        eos_token_id: end-of-sequence id(s); None takes the model's generation config.
        pad_token_id: fill value of unused token slots; None takes the model's, else the first EOS.
        max_tokens_per_second: if set, the per-utterance token limit used by the inference tool is
            ``ceil(max_tokens_per_second * seconds) + max_tokens_constant`` (capped by max_new_tokens).
        max_tokens_constant: see max_tokens_per_second.
        ctc_weight: joint CTC/attention decoding (not in the paper): each token is scored
            ``(1 - ctc_weight) * log p_LLM + ctc_weight * CTC prefix score`` with the CTC posteriors of the adapter
            frames (the model needs ``adapter_ctc_conf``); 0 disables it, 1 is CTC alone under the LLM's pre-beam.
        ctc_pre_beam: with ``ctc_weight``, CTC-score only the LLM's ``ctc_pre_beam`` best tokens of each beam
            (0: the whole vocabulary; ESPnet's partial scoring, for large vocabularies such as Vicuna's 32000).
        no_speech_threshold: when the LLM's probability of ending at once (EOS as the first token) exceeds it, the
            utterance decodes to the empty hypothesis whatever the CTC says (Whisper's no-speech gate, here on the
            LLM's own EOS). It keeps joint CTC decoding from spelling out non-speech that the CTC half-reads as
            words (reversed speech). None disables it.
        shared_prefix_kv: implementation choice, not a search setting. True: the prefix keys/values are kept
            once per utterance and shared by its beams (K times less KV memory and copying; equal to ``generate``
            up to float rounding). False: an HF cache with a copy per beam and ``generate``'s attention kernels;
            use it to reproduce ``generate`` exactly in bf16/fp16, where the two attention orders round
            differently and can flip near-tied hypotheses.
    """

    beam_size: int = 4
    nbest: int = 1
    max_new_tokens: int = 128
    min_new_tokens: int = 0
    no_repeat_ngram_size: int = 0
    no_loop_ngram_size: int = 0
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    max_tokens_per_second: float | None = None
    max_tokens_constant: int = 10
    ctc_weight: float = 0.0
    ctc_pre_beam: int = 0
    no_speech_threshold: float | None = None
    shared_prefix_kv: bool = True

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def from_dict(cls, conf: dict[str, Any] | None) -> "BeamSearchConfig":
        """Build from a (YAML) dict; an unknown key is a ValueError that names it and lists the known ones."""
        conf = dict(conf or {})
        known = cls.field_names()
        unknown = sorted(k for k in conf if k not in known)
        if unknown:
            raise UserError(f"unknown decoding option(s) {unknown}; known options: {sorted(known)}")
        return cls(**conf)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in sorted(self.field_names())}

    def validate(self) -> None:
        """Raise a ValueError naming the bad value and the fix."""
        if not isinstance(self.beam_size, int) or self.beam_size < 1:
            raise UserError(f"beam_size must be an int >= 1, got {self.beam_size!r}")
        if not isinstance(self.nbest, int) or not 1 <= self.nbest <= self.beam_size:
            raise UserError(f"nbest must be in [1, beam_size={self.beam_size}], got {self.nbest!r}")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise UserError(f"max_new_tokens must be an int >= 1, got {self.max_new_tokens!r}")
        if not isinstance(self.min_new_tokens, int) or self.min_new_tokens < 0:
            raise UserError(f"min_new_tokens must be an int >= 0, got {self.min_new_tokens!r}")
        if not isinstance(self.no_repeat_ngram_size, int) or self.no_repeat_ngram_size < 0:
            raise UserError(
                f"no_repeat_ngram_size must be an int >= 0 (0 disables), got {self.no_repeat_ngram_size!r}")
        if not isinstance(self.no_loop_ngram_size, int) or self.no_loop_ngram_size < 0:
            raise UserError(
                f"no_loop_ngram_size must be an int >= 0 (0 disables), got {self.no_loop_ngram_size!r}")
        if isinstance(self.length_penalty, bool) or not isinstance(self.length_penalty, (int, float)):
            raise UserError(f"length_penalty must be a number, got {self.length_penalty!r}")
        self.length_penalty = float(self.length_penalty)
        if not (isinstance(self.early_stopping, bool) or self.early_stopping == "never"):
            raise UserError(f"early_stopping must be true, false or 'never', got {self.early_stopping!r}")
        eos = self.eos_token_id
        if eos is not None and not (
            isinstance(eos, int) or (isinstance(eos, (list, tuple)) and eos and all(isinstance(e, int) for e in eos))
        ):
            raise UserError(f"eos_token_id must be an int or a non-empty list of ints, got {eos!r}")
        if self.max_tokens_per_second is not None and self.max_tokens_per_second <= 0:
            raise UserError(f"max_tokens_per_second must be > 0 or null, got {self.max_tokens_per_second!r}")
        if isinstance(self.ctc_weight, bool) or not isinstance(self.ctc_weight, (int, float)) \
                or not 0.0 <= self.ctc_weight <= 1.0:
            raise UserError(f"ctc_weight must be a number in [0, 1] (0 disables joint CTC decoding), got "
                            f"{self.ctc_weight!r}")
        self.ctc_weight = float(self.ctc_weight)
        if not isinstance(self.ctc_pre_beam, int) or self.ctc_pre_beam < 0:
            raise UserError(f"ctc_pre_beam must be an int >= 0 (0: score every token), got {self.ctc_pre_beam!r}")
        thr = self.no_speech_threshold
        if thr is not None and (isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0.0 < thr < 1.0):
            raise UserError(f"no_speech_threshold must be a probability in (0, 1) or null, got {thr!r}")
        if thr is not None and self.min_new_tokens > 0:
            raise UserError(f"no_speech_threshold={thr} decodes non-speech to the empty hypothesis, which "
                            f"min_new_tokens={self.min_new_tokens} forbids: set one of them to null / 0")
        if not isinstance(self.shared_prefix_kv, bool):
            raise UserError(f"shared_prefix_kv must be true or false, got {self.shared_prefix_kv!r}")
        if not isinstance(self.max_tokens_constant, int) or self.max_tokens_constant < 0:
            raise UserError(f"max_tokens_constant must be an int >= 0, got {self.max_tokens_constant!r}")

    def eos_ids(self) -> list[int] | None:
        if self.eos_token_id is None:
            return None
        return [self.eos_token_id] if isinstance(self.eos_token_id, int) else list(self.eos_token_id)

    def max_new_tokens_for_duration(self, seconds: float) -> int:
        """Token limit of an utterance of the given duration (max_new_tokens when no per-second rate is set)."""
        if self.max_tokens_per_second is None:
            return self.max_new_tokens
        limit = int(-(-self.max_tokens_per_second * seconds // 1)) + self.max_tokens_constant
        return max(1, min(limit, self.max_new_tokens))


def load_decode_config(path: Optional[str], nbest: Optional[int] = None) -> BeamSearchConfig:
    """``BeamSearchConfig`` from a YAML file (None: defaults); ``nbest`` overrides the file's."""
    conf = {}
    if path:
        with open(path, encoding="utf-8") as f:
            conf = yaml.safe_load(f) or {}
        if not isinstance(conf, dict):
            raise UserError(f"{path}: expected a mapping of decoding options, got {type(conf).__name__}")
    if nbest is not None:
        conf["nbest"] = nbest
    try:
        return BeamSearchConfig.from_dict(conf)
    except ValueError as e:
        raise UserError(f"{path or 'decoding options'}: {e}") from e
