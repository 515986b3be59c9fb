"""Kaldi data directories (``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``, ``utt2*``) and the
done-markers that make the data stages idempotent.

Files are "key value" lines sorted by key in byte order (what ``LC_ALL=C sort`` gives; for UTF-8
text Python's code-point order is the same). A ``text`` line may be the key alone: an empty
transcript, as used for non-speech utterances.
"""
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, Mapping, Optional, Tuple, Union

from espnet_speechllm.utils.cli import MissingInputError, UserError

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


class OutputsExistError(UserError, RuntimeError):
    """Outputs exist from a run with other settings, and overwriting them was not asked for."""


def read_kaldi_file(path: PathLike, allow_empty_value: bool = False) -> Dict[str, str]:
    """Reads "key value" lines into an insertion-ordered dict.

    Raises ValueError naming the file and line for: bytes that are not UTF-8, a key without a value
    (unless ``allow_empty_value``), a duplicated key.
    """
    out: Dict[str, str] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise UserError(f"{path} line {lineno} is not valid UTF-8 ({e.reason} at byte {e.start}): "
                                f"{raw[:80]!r}") from None
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.strip().split(maxsplit=1)
            key = parts[0]
            value = parts[1] if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise UserError(f"{path} line {lineno}: key {key!r} has no value")
            if key in out:
                raise UserError(f"{path} line {lineno}: key {key!r} is duplicated; "
                                f"run utils/fix_data_dir.sh {os.path.dirname(str(path)) or '.'}")
            out[key] = value
    return out


def write_kaldi_file(path: PathLike, items: Union[Mapping[str, str], Iterable[Tuple[str, str]]]) -> None:
    """Writes "key value" lines sorted by key ("key" alone when the value is empty)."""
    pairs = items.items() if isinstance(items, Mapping) else items
    lines = sorted((str(k), str(v)) for k, v in pairs)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for k, v in lines:
            f.write(f"{k} {v}\n" if v != "" else f"{k}\n")
    os.replace(tmp, path)


def spk2utt_from_utt2spk(utt2spk: Mapping[str, str]) -> Dict[str, str]:
    spk2utt: Dict[str, list] = {}
    for utt in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return {spk: " ".join(utts) for spk, utts in spk2utt.items()}


@dataclass
class DataDir:
    """The per-utterance files of a Kaldi data dir, all keyed by utterance id."""

    wav_scp: Dict[str, str]
    utt2spk: Dict[str, str]
    text: Optional[Dict[str, str]] = None
    extra: Dict[str, Dict[str, str]] = field(default_factory=dict)  # e.g. {"utt2num_samples": {...}}

    @property
    def utts(self):
        return sorted(self.wav_scp)

    def __len__(self):
        return len(self.wav_scp)


def read_data_dir(path: PathLike, require_text: bool = True) -> DataDir:
    """Reads wav.scp, utt2spk and text; raises ValueError when their utterances differ."""
    path = str(path)
    for name in ["wav.scp", "utt2spk"] + (["text"] if require_text else []):
        if not os.path.isfile(os.path.join(path, name)):
            raise MissingInputError(f"{path}/{name} does not exist")
    wav = read_kaldi_file(os.path.join(path, "wav.scp"))
    utt2spk = read_kaldi_file(os.path.join(path, "utt2spk"))
    text = None
    if os.path.isfile(os.path.join(path, "text")):
        text = read_kaldi_file(os.path.join(path, "text"), allow_empty_value=True)
    for name, other in [("utt2spk", utt2spk), ("text", text)]:
        if other is None:
            continue
        if set(other) != set(wav):
            only_wav = sorted(set(wav) - set(other))
            only_other = sorted(set(other) - set(wav))
            example = (only_wav + only_other)[0]
            raise UserError(f"{path}: wav.scp and {name} have different utterances ({len(only_wav)} only in "
                            f"wav.scp, {len(only_other)} only in {name}, e.g. {example}); "
                            f"run utils/fix_data_dir.sh {path}")
    return DataDir(wav_scp=wav, utt2spk=utt2spk, text=text)


def write_data_dir(path: PathLike, data: DataDir) -> None:
    """Writes wav.scp, utt2spk, spk2utt, text (if any) and the extra utt2* files, all sorted."""
    path = str(path)
    os.makedirs(path, exist_ok=True)
    write_kaldi_file(os.path.join(path, "wav.scp"), data.wav_scp)
    write_kaldi_file(os.path.join(path, "utt2spk"), data.utt2spk)
    spk2utt = spk2utt_from_utt2spk(data.utt2spk)
    with open(os.path.join(path, "spk2utt"), "w", encoding="utf-8") as f:
        for spk, utts in spk2utt.items():
            f.write(f"{spk} {utts}\n")
    if data.text is not None:
        write_kaldi_file(os.path.join(path, "text"), data.text)
    for name, values in data.extra.items():
        write_kaldi_file(os.path.join(path, name), values)


class DoneMarker:
    """A ``.done`` file recording the settings an output was made with (icefall-style guard).

    ``is_done()`` is True when the marker exists with the same settings (skip the step); False when
    there is no marker or ``force`` is set (do it); it raises OutputsExistError when the marker
    records other settings, so a rerun with changed options never silently reuses stale outputs.
    """

    def __init__(self, path: PathLike, settings: Mapping, force: bool = False, what: Optional[str] = None):
        self.path = str(path)
        self.what = what or (os.path.dirname(self.path) or ".")
        self.settings = json.loads(json.dumps(dict(settings), sort_keys=True, default=str))
        self.force = force

    def is_done(self) -> bool:
        if self.force or not os.path.isfile(self.path):
            return False
        with open(self.path, encoding="utf-8") as f:
            try:
                old = json.load(f)
            except json.JSONDecodeError:
                old = None
        if old != self.settings:
            diff = self._diff(old if isinstance(old, dict) else {})
            raise OutputsExistError(
                f"{self.what} was made with other settings ({diff}); "
                f"pass --force true to remake it, or use another output dir")
        return True

    def _diff(self, old: Mapping) -> str:
        def flat(d: Mapping, prefix: str = "") -> Dict:
            out = {}
            for k, v in d.items():
                if isinstance(v, Mapping):
                    out.update(flat(v, f"{prefix}{k}."))
                else:
                    out[f"{prefix}{k}"] = v
            return out

        a, b = flat(old), flat(self.settings)
        parts = [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        return "; ".join(parts) if parts else "unreadable marker"

    def write(self) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        with open(self.path, "w", encoding="utf-8") as f:
            json.dump(self.settings, f, indent=1, sort_keys=True)
            f.write("\n")

    def remove(self) -> None:
        if os.path.isfile(self.path):
            os.remove(self.path)
