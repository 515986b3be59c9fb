"""The markdown pieces of an experiment's RESULTS.md section: WER, insertions on non-speech sets, parameters,
and the notes on utterances that stage 6 dropped from a scored set."""
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet_speechllm.scoring.sclite import SCLITE_FIELDS


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f}"


def wer_table(sets: Dict[str, dict]) -> List[str]:
    """sclite's Snt/Wrd counts and percentages per set; ``-`` where a percentage is undefined."""
    lines = ["|dataset|" + "|".join(SCLITE_FIELDS) + "|", "|---" * len(("dataset",) + SCLITE_FIELDS) + "|"]
    for name, v in sets.items():
        r = v["result"]
        cells = [str(r["counts"]["Snt"]), str(r["counts"]["Wrd"])]
        cells += [_pct(r["percent"][k]) for k in SCLITE_FIELDS[2:]]
        lines.append(f"|{name}|" + "|".join(cells) + "|")
    return lines


def hallucination_table(sets: Dict[str, dict]) -> List[str]:
    """One row per set with hallucination figures; no table (``[]``) when none has them."""
    header = "|dataset|Snt|non-empty hyp (%)|Ins (words)|Ins chars|audio (min)|Ins words/min|Ins chars/min|"
    lines = [header, "|---" * 8 + "|"]
    for name, v in sets.items():
        h = v["hallucination"]
        if not h:
            continue
        per_min = [
            "-" if h[k] is None else f"{h[k]:.2f}" for k in ("inserted_words_per_min", "inserted_chars_per_min")
        ]
        lines.append(
            f"|{name}|{h['num_utts']}|{_pct(h['nonempty_hyp_percent'])}|{h['inserted_words']}|"
            f"{h['inserted_chars']}|{h['audio_minutes']:.2f}|{per_min[0]}|{per_min[1]}|"
        )
    return lines if len(lines) > 2 else []


def param_table(report: dict) -> List[str]:
    """Total and trainable parameters per module of ``param_report.json``, then the whole model."""
    def fmt(n: int) -> str:
        return f"{n:,} ({n / 1e6:.1f} M)"

    lines = ["|module|total|trainable|trainable (%)|", "|---|---|---|---|"]
    rows = list(report.get("modules", {}).items()) + [("**all**", report)]
    for name, d in rows:
        share = 100.0 * d["trainable"] / d["total"] if d["total"] else 0.0
        lines.append(f"|{name}|{fmt(d['total'])}|{fmt(d['trainable'])}|{share:.2f}|")
    return lines


def dropped_notes(sets: Sequence[str], dump_dir: Optional[Path], base: Path) -> List[str]:
    """One line per set whose stage-6 dump dropped utterances: how many, why, and where the list is."""
    notes = []
    for name in sets:
        listing = dump_dir / name / "dropped_utts.txt" if dump_dir is not None else None
        if listing is None or not listing.is_file():
            continue
        reasons: Dict[str, int] = {}
        with open(listing, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2:
                    reasons[parts[1]] = reasons.get(parts[1], 0) + 1
        if reasons:
            why = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()))
            notes.append(f"- {name}: {sum(reasons.values())} utterance(s) dropped at stage 6 and not scored "
                         f"({why}); list: `{os.path.relpath(listing, base)}`")
    return notes
