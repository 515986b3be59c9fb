"""Kaldi data directories (``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``, ``utt2*``): the one reader and
writer of their "key value" files, and the done-markers that make the data steps idempotent.

Files are "key value" lines sorted by key in byte order (what ``LC_ALL=C sort`` gives; for UTF-8 text
Python's code-point order is the same). A ``text`` line may be the key alone: an empty transcript, as used
for non-speech utterances. Reading one is strict, and every error is a ``UserError`` naming ``file:line``:
bytes that are not UTF-8, a carriage return (a CRLF file: keys and values would end in it), a key without a
value where none is allowed, a duplicated key. Blank lines are skipped.
"""
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from typing import Callable, Collection, Dict, Iterable, Iterator, Mapping, Optional, Sequence, Tuple, Union

from espnet_speechllm.utils.cli import MissingInputError, UserError

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


class OutputsExistError(UserError, RuntimeError):
    """Outputs exist from a run with other settings, and overwriting them was not asked for."""


def _entries(path: PathLike, allow_empty_value: bool) -> Iterator[Tuple[int, str, str]]:
    """(line number, key, value) of each non-blank line, checked as the module docstring says."""
    seen = set()
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip("\n")
            except UnicodeDecodeError as e:
                raise UserError(f"{path}:{lineno}: not valid UTF-8 ({e.reason} at byte {e.start}): "
                                f"{raw[:80]!r}") from None
            if "\r" in line:
                raise UserError(f"{path}:{lineno}: holds a carriage return (Windows CRLF line endings?): keys and "
                                f"values would end in it; convert the file, e.g. sed -i 's/\\r$//' {path}")
            parts = line.strip().split(maxsplit=1)
            if not parts:
                continue
            key, value = parts[0], parts[1] if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise UserError(f"{path}:{lineno}: {key!r} has no value (expected 'utt_id value')")
            if key in seen:
                folder = os.path.dirname(str(path)) or "."
                fix = os.path.isfile(os.path.join(folder, "wav.scp"))  # a data dir: fix_data_dir.sh keeps the first
                raise UserError(f"{path}:{lineno}: duplicate utterance id {key!r}"
                                + (f"; run utils/fix_data_dir.sh {folder}" if fix else ""))
            seen.add(key)
            yield lineno, key, value


def read_kaldi_file(path: PathLike, allow_empty_value: bool = False,
                    keys: Optional[Collection[str]] = None) -> Dict[str, str]:
    """Reads "key value" lines into an insertion-ordered dict (only ``keys``, when given).

    ``allow_empty_value``: a line may be the key alone (value ""), as in a ``text`` file.
    """
    return {k: v for _, k, v in _entries(path, allow_empty_value) if keys is None or k in keys}


def read_numbers(path: PathLike, kind: Callable[[str], Union[int, float]] = float) -> Dict[str, Union[int, float]]:
    """Reads "key number" lines (``utt2num_samples``: ``kind=int``, ``utt2dur``: float)."""
    out: Dict[str, Union[int, float]] = {}
    for lineno, key, value in _entries(path, allow_empty_value=False):
        try:
            out[key] = kind(value)
        except ValueError:
            raise UserError(f"{path}:{lineno}: not a number: {value!r}") from None
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
    """Reads wav.scp, utt2spk and text; raises UserError when their utterances differ."""
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
    ``start(outputs)`` is the routine of a data step around it.
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

    def start(self, outputs: Sequence[PathLike], made: str = "made") -> bool:
        """True when the outputs are done with these settings: logged, the caller skips the step.

        Otherwise the step is to run: outputs (dirs or files) that exist without this marker are refused
        (an interrupted run, or files made by hand) unless ``force``; with ``force`` they are removed, and
        so is the marker, which the caller writes when the step has succeeded.
        """
        if self.is_done():
            logger.info("%s already %s; skipping (--force true remakes it)", self.what, made)
            return True
        existing = [str(o) for o in outputs if os.path.lexists(o)]
        if existing and not self.force:
            one = len(existing) == 1
            raise OutputsExistError(
                f"{', '.join(existing)} {'exists but is' if one else 'exist but are'} incomplete (no "
                f"{os.path.basename(self.path)}): an interrupted run, or files made by hand; pass --force true to "
                f"remake {'it' if one else 'them'}")
        for o in existing:
            if os.path.isdir(o) and not os.path.islink(o):
                shutil.rmtree(o)
            else:
                os.remove(o)
        self.remove()
        return False

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
