"""Per-utterance preprocessing for the dataset: transcript text -> LLM token ids."""
import logging
from typing import Dict

import numpy as np

logger = logging.getLogger(__name__)

TEXT_CASES = ("keep", "lower", "upper")


class TranscriptTokenizer:
    """Turn the ``text`` field into int64 LLM token ids (no BOS/EOS: the model adds the prompt and EOS).

    An empty transcript (non-speech utterance) becomes an empty array: the model then learns to emit EOS
    right after the prompt (paper Sec. 2.3, training on non-speech segments with empty transcripts).
    """

    def __init__(self, tokenizer, text_case: str = "keep"):
        if text_case not in TEXT_CASES:
            raise ValueError(f"text_case={text_case!r}; choose one of {TEXT_CASES}")
        self.tokenizer = tokenizer
        self.text_case = text_case

    def normalize(self, text: str) -> str:
        text = " ".join(text.split())
        if self.text_case == "lower":
            return text.lower()
        if self.text_case == "upper":
            return text.upper()
        return text

    def __call__(self, uid: str, data: Dict[str, object]) -> Dict[str, np.ndarray]:
        # ESPnet's streaming dataset (collect stats) may hand over fields its inner dataset already
        # preprocessed: only raw strings are tokenized.
        if isinstance(data.get("text"), str):
            text = self.normalize(data["text"])
            ids = self.tokenizer(text, add_special_tokens=False).input_ids if text else []
            data["text"] = np.asarray(ids, dtype=np.int64)
        if "speech" in data:
            data["speech"] = np.asarray(data["speech"], dtype=np.float32)
        return data
