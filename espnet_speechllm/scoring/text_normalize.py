"""Reading ESPnet ``text`` files and the one text normalization used for scoring.

Both the sclite ``trn`` files and the jiwer cross-check are built from :func:`normalize_text`, so the two
scorers see exactly the same words.

Normalization (in this order):

1. Unicode NFKC, so full-width letters and ligatures compare equal to their plain forms.
2. Typographic apostrophes (U+2018, U+2019, U+02BC) become ``'``.
3. Every Unicode punctuation character (general category ``P*``) except ``'`` becomes a space. Replacing
   with a space rather than deleting keeps ``well-known`` as two words, like the reference transcripts of
   LibriSpeech; it also removes every character sclite gives a meaning to in ``trn`` text
   (``( ) { } / * -``), so no hypothesis can turn into an optional or alternative reference word.
4. Uppercase (``str.upper``), because LibriSpeech references are uppercase and LLM hypotheses are cased.
5. Whitespace runs collapse to one space; leading and trailing whitespace is removed.
"""

import logging
import unicodedata
from pathlib import Path
from typing import Dict, Union

from espnet_speechllm.utils.cli import UserError

logger = logging.getLogger(__name__)

_APOSTROPHES = {"\u2018": "'", "\u2019": "'", "\u02bc": "'"}


def normalize_text(text: str) -> str:
    """Return ``text`` normalized for scoring (see the module docstring for the exact rules)."""
    text = unicodedata.normalize("NFKC", text)
    chars = []
    for ch in text:
        ch = _APOSTROPHES.get(ch, ch)
        if ch != "'" and unicodedata.category(ch).startswith("P"):
            ch = " "
        chars.append(ch)
    return " ".join("".join(chars).upper().split())


def read_text(path: Union[str, Path]) -> Dict[str, str]:
    """Read an ESPnet/Kaldi ``text`` file: ``utt_id word word ...`` per line.

    A line holding only ``utt_id`` (trailing spaces allowed) is an empty transcript. The file must be
    UTF-8; a bad line raises ``ValueError`` naming the file and line number. Duplicate ids are errors too,
    because a silently overwritten hypothesis would change the WER.
    """
    path = Path(path)
    texts: Dict[str, str] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise UserError(
                    f"{path}:{lineno}: not valid UTF-8 ({e.reason} at byte {e.start}): {raw[:80]!r}"
                ) from e
            line = line.rstrip("\r\n")
            if not line.strip():
                # Blank lines carry no utterance id; tolerate them rather than invent one.
                continue
            parts = line.strip().split(maxsplit=1)
            utt_id = parts[0]
            if utt_id in texts:
                raise UserError(f"{path}:{lineno}: duplicate utterance id {utt_id!r}")
            texts[utt_id] = parts[1] if len(parts) > 1 else ""
    logger.debug("read %d utterances from %s", len(texts), path)
    return texts
