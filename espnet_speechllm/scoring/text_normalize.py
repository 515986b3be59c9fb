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

import unicodedata
from pathlib import Path
from typing import Dict, Union

from espnet_speechllm.data.kaldi_dir import read_kaldi_file

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
    """Read an ESPnet/Kaldi ``text`` file (``utt_id word word ...`` per line; the id alone is an empty
    transcript) with the data-dir reader: a bad line, a duplicate id included (a silently overwritten
    hypothesis would change the WER), is a ``UserError`` naming file and line."""
    return read_kaldi_file(path, allow_empty_value=True)
