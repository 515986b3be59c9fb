"""NIST sclite: write ``trn`` files, run the binary, parse its report.

The ``trn`` lines follow ESPnet's ``asr.sh``: ``TEXT (SPK-UTT)``. With ``-i rm`` sclite takes everything
before the first ``-`` of the id as the speaker, which is what fills its per-speaker tables. An utterance
with an empty reference is written as `` (SPK-UTT)``; sclite scores it (every hypothesis word becomes an
insertion), so non-speech utterances count in Snt, Ins and S.Err.

Measured behaviour of sclite 2.10 that the parser accounts for:

- ``-o all stdout`` prints the ``Sum/Avg`` line (percentages, 1 decimal) and then a ``Sum`` line (counts).
  When the whole set has no reference words (Wrd = 0) its ``Sum/Avg`` percentages read 0.0 although there
  are insertions; the counts are right, so percentages are left undefined (``None``) in that case.
- It lowercases utterance and speaker ids in its report, so ids differing only in case would be merged;
  :func:`write_trn` refuses them.
- Some input errors (e.g. an id without ``-``) only print ``Error`` on stderr and exit 0, so stderr is
  checked too.
- sclite aligns with costs substitution 4, insertion 3, deletion 3, not a plain edit distance: in rare
  utterances its alignment has more errors than the minimum edit distance (on 20,000 random 4-word-alphabet
  pairs: 42 utterances, every one cheaper or equal under those costs, never fewer errors). The jiwer
  cross-check in ``scoring/jiwer_check.py`` accounts for exactly these.
"""

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional, Tuple, Union

from espnet_speechllm.utils.cli import MissingInputError, UserError

logger = logging.getLogger(__name__)

# Columns of sclite's summary tables, in its order.
SCLITE_FIELDS = ("Snt", "Wrd", "Corr", "Sub", "Del", "Ins", "Err", "S.Err")
# Alignment costs of sclite's word DP (see the module docstring for how this was checked).
SCLITE_COST_SUB = 4
SCLITE_COST_INS_DEL = 3

_DEFAULT_SCLITE = "/usr/lib/sctk/bin/sclite"  # Debian's sctk installs it here, not on PATH


def find_sclite(explicit: Optional[str] = None) -> Optional[str]:
    """Return the sclite executable: ``explicit``, else ``sclite`` on PATH, else Debian's location."""
    if explicit:
        return explicit if Path(explicit).is_file() else shutil.which(explicit)
    found = shutil.which("sclite")
    if found:
        return found
    return _DEFAULT_SCLITE if Path(_DEFAULT_SCLITE).is_file() else None


def _check_id(kind: str, value: str, utt_id: str) -> None:
    # Parentheses end the trn id and whitespace splits it: sclite would misread the line silently.
    if not value or any(c in value for c in "()") or any(c.isspace() for c in value):
        raise UserError(f"{kind} {value!r} of utterance {utt_id!r} cannot be written to a trn file")


def sclite_id(trn_id: str) -> str:
    """The id as sclite prints it in its report: ASCII letters lowercased."""
    return "".join(c.lower() if c.isascii() else c for c in trn_id)


def write_trn(
    path: Union[str, Path],
    texts: Mapping[str, str],
    utt2spk: Mapping[str, str],
    utt_ids: Optional[Iterable[str]] = None,
) -> Dict[str, str]:
    """Write ``TEXT (SPK-UTT)`` lines; return ``{utt_id: id as sclite reports it}`` (lowercased).

    ``texts`` must already be normalized. ``utt_ids`` fixes the order (default: sorted).
    """
    trn_ids: Dict[str, str] = {}
    seen: Dict[str, str] = {}
    with open(path, "w", encoding="utf-8") as f:
        for utt_id in utt_ids if utt_ids is not None else sorted(texts):
            spk = utt2spk[utt_id]
            _check_id("utterance id", utt_id, utt_id)
            _check_id("speaker id", spk, utt_id)
            trn_id = f"{spk}-{utt_id}"
            reported = sclite_id(trn_id)
            if reported in seen:
                raise UserError(
                    f"utterances {seen[reported]!r} and {utt_id!r} differ only in letter case; sclite "
                    "lowercases ids and would merge them"
                )
            seen[reported] = utt_id
            trn_ids[utt_id] = reported
            f.write(f"{texts[utt_id]} ({trn_id})\n")
    return trn_ids


@dataclass
class SCLiteResult:
    """Numbers parsed from one sclite report.

    counts: the ``Sum`` row (integers). percent: the ``Sum/Avg`` row as printed (1 decimal); every
    column except S.Err is ``None`` when Wrd = 0. utt_scores: ``{sclite_id(trn_id): (C, S, D, I)}`` per utterance.
    """

    counts: Dict[str, int]
    percent: Dict[str, Optional[float]]
    utt_scores: Dict[str, Tuple[int, int, int, int]] = field(default_factory=dict)

    @property
    def wer(self) -> Optional[float]:
        """Err / Wrd in percent from the counts (unrounded); ``None`` when there are no reference words."""
        wrd = self.counts["Wrd"]
        return 100.0 * self.counts["Err"] / wrd if wrd > 0 else None


def _table_row(report: str, label: str) -> Optional[list]:
    # Rows look like "| Sum/Avg|    3      5 | 80.0   20.0 ... |"; the label cell is matched exactly.
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] == label:
            return cells[1].split() + cells[2].split()
    return None


_UTT_SCORES = re.compile(r"^id: \((\S+)\)\s*\nScores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)", re.M)


def parse_report(report: str, source: str = "sclite report") -> SCLiteResult:
    """Parse the output of ``sclite ... -o all stdout`` (``source`` names it in errors)."""
    count_row = _table_row(report, "Sum")
    percent_row = _table_row(report, "Sum/Avg")
    if count_row is None or percent_row is None:
        raise ValueError(f"{source}: no 'Sum' and 'Sum/Avg' rows; was sclite run with '-o all stdout'?")
    if len(count_row) != len(SCLITE_FIELDS) or len(percent_row) != len(SCLITE_FIELDS):
        raise ValueError(f"{source}: expected {len(SCLITE_FIELDS)} columns, got {count_row} / {percent_row}")
    counts = {k: int(float(v)) for k, v in zip(SCLITE_FIELDS, count_row)}
    percent: Dict[str, Optional[float]] = {k: float(v) for k, v in zip(SCLITE_FIELDS[2:], percent_row[2:])}
    if counts["Wrd"] == 0:
        # sclite prints 0.0 here even with insertions; a rate per reference word does not exist.
        percent.update({k: None for k in ("Corr", "Sub", "Del", "Ins", "Err")})
    utt_scores = {m.group(1): tuple(int(m.group(i)) for i in range(2, 6)) for m in _UTT_SCORES.finditer(report)}
    return SCLiteResult(counts=counts, percent=percent, utt_scores=utt_scores)


def run_sclite(
    ref_trn: Union[str, Path],
    hyp_trn: Union[str, Path],
    result_txt: Union[str, Path],
    sclite: Optional[str] = None,
) -> SCLiteResult:
    """Run ``sclite -r ref trn -h hyp trn -i rm -o all stdout``, save the report, return its numbers."""
    exe = find_sclite(sclite)
    if exe is None:
        raise MissingInputError(
            "sclite not found on PATH nor at /usr/lib/sctk/bin/sclite; install Debian's 'sctk' package"
        )
    cmd = [exe, "-r", str(ref_trn), "trn", "-h", str(hyp_trn), "trn", "-i", "rm", "-o", "all", "stdout"]
    logger.info("running: %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0 or "Error" in proc.stderr:
        raise RuntimeError(f"sclite failed (exit {proc.returncode}) on {hyp_trn}:\n{proc.stderr.strip()[-2000:]}")
    Path(result_txt).write_text(proc.stdout, encoding="utf-8")
    return parse_report(proc.stdout, source=str(result_txt))
