"""Scoring of one decoded set (recipe stage 12): NIST sclite, cross-checked with jiwer, and insertions on
non-speech sets.

Inputs are ESPnet ``text`` files (``utt_id word ...``; a line with only the id is an empty transcript).
Both sides go through ``espnet_speechllm.scoring.text_normalize.normalize_text``; the same normalized text
feeds sclite's ``trn`` files and jiwer.

Outputs in the output dir:
  ref.trn, hyp.trn     ``TEXT (SPK-UTT)`` lines given to sclite
  result.txt           sclite's full report (``-o all stdout``: per-speaker tables and alignments)
  result.json          parsed Sum/Avg numbers, the jiwer cross-check, the WER (null when undefined)
  hallucination.json   for a non-speech set or when every reference is empty

A disagreement of sclite and jiwer beyond the tolerance (``espnet_speechllm.scoring.jiwer_check``) is an error.
"""

import json
import logging
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

from espnet_speechllm.scoring.hallucination import hallucination_stats, read_durations
from espnet_speechllm.scoring.jiwer_check import MAX_LISTED, cross_check
from espnet_speechllm.scoring.sclite import SCLITE_FIELDS, run_sclite, write_trn
from espnet_speechllm.scoring.text_normalize import normalize_text, read_text
from espnet_speechllm.utils.cli import UserError

logger = logging.getLogger(__name__)


def check_same_utterances(refs: Mapping[str, str], hyps: Mapping[str, str], ref_path, hyp_path) -> None:
    """Raise ``ValueError`` listing counts and a few ids when the two files hold different utterances."""
    missing = sorted(set(refs) - set(hyps))
    extra = sorted(set(hyps) - set(refs))
    if not missing and not extra:
        return
    msg = [f"{hyp_path} and {ref_path} hold different utterances ({len(hyps)} vs {len(refs)}):"]
    if missing:
        msg.append(f"{len(missing)} missing from the hypotheses, e.g. {missing[:MAX_LISTED]}")
    if extra:
        msg.append(f"{len(extra)} not in the references, e.g. {extra[:MAX_LISTED]}")
    msg.append("decode every utterance of the reference set (an empty hypothesis is a line with the id only)")
    raise UserError("; ".join(msg))


def default_speaker(utt_id: str) -> str:
    """Kaldi convention: utterance ids start with the speaker id, up to the first '-' or '_'."""
    for i, ch in enumerate(utt_id):
        if ch in "-_" and i > 0:
            return utt_id[:i]
    return utt_id


def load_utt2spk(path: Optional[str], ref_text: Path, utt_ids: Sequence[str]) -> Dict[str, str]:
    """Speaker per utterance for sclite's per-speaker tables: ``path``, else utt2spk next to ``ref_text``, else the
    utterance-id prefixes."""
    if path is None and (ref_text.parent / "utt2spk").is_file():
        path = str(ref_text.parent / "utt2spk")
    if path is None:
        logger.warning("no utt2spk next to %s: speakers taken from utterance-id prefixes", ref_text)
        return {u: default_speaker(u) for u in utt_ids}
    utt2spk = read_text(path)
    missing = [u for u in utt_ids if not utt2spk.get(u, "").strip()]
    if missing:
        raise UserError(f"{path}: no speaker for {len(missing)} utterances, e.g. {missing[:MAX_LISTED]}")
    # sclite's -i rm splits the id at the first '-', so a '-' inside a speaker id would shorten it.
    return {u: utt2spk[u].split()[0].replace("-", "_") for u in utt_ids}


def find_durations(ref_text: Path, utt2num_samples: Optional[str] = None, utt2dur: Optional[str] = None,
                   sample_rate: int = 16000) -> Dict[str, float]:
    """Seconds per utterance from the given file, else from utt2num_samples or utt2dur next to ``ref_text``."""
    num_samples, dur = utt2num_samples, utt2dur
    if num_samples is None and dur is None:
        if (ref_text.parent / "utt2num_samples").is_file():
            num_samples = str(ref_text.parent / "utt2num_samples")
        elif (ref_text.parent / "utt2dur").is_file():
            dur = str(ref_text.parent / "utt2dur")
        else:
            raise UserError(
                f"hallucination metrics need durations: no utt2num_samples or utt2dur next to {ref_text}; "
                "pass --utt2num_samples or --utt2dur"
            )
    logger.info("durations from %s", num_samples or dur)
    return read_durations(utt2num_samples=num_samples, utt2dur=dur, sample_rate=sample_rate)


def score_set(
    ref_text: str,
    hyp_text: str,
    out_dir: str,
    utt2spk: Optional[str] = None,
    utt2num_samples: Optional[str] = None,
    utt2dur: Optional[str] = None,
    sample_rate: int = 16000,
    nonspeech: bool = False,
    max_wer_diff: float = 0.01,
    sclite: Optional[str] = None,
) -> dict:
    """Run the whole scoring of one set into ``out_dir``; return the content of result.json.

    ``utt2spk``, ``utt2num_samples``/``utt2dur`` default to the files next to ``ref_text``; ``nonspeech`` also
    writes hallucination.json (always written when every reference is empty); ``sclite``: the executable.
    """
    ref_path, hyp_path = Path(ref_text), Path(hyp_text)
    out_dir = Path(out_dir)
    refs_raw, hyps_raw = read_text(ref_path), read_text(hyp_path)
    if not refs_raw:
        raise UserError(f"{ref_path}: no utterances")
    check_same_utterances(refs_raw, hyps_raw, ref_path, hyp_path)
    utt_ids = sorted(refs_raw)
    refs = {u: normalize_text(refs_raw[u]) for u in utt_ids}
    hyps = {u: normalize_text(hyps_raw[u]) for u in utt_ids}
    speakers = load_utt2spk(utt2spk, ref_path, utt_ids)

    out_dir.mkdir(parents=True, exist_ok=True)
    # Outputs of an earlier run must not survive a failed or different one (make_report reads them).
    for stale in ("result.json", "hallucination.json"):
        (out_dir / stale).unlink(missing_ok=True)
    trn_ids = write_trn(out_dir / "ref.trn", refs, speakers, utt_ids)
    write_trn(out_dir / "hyp.trn", hyps, speakers, utt_ids)
    result = run_sclite(out_dir / "ref.trn", out_dir / "hyp.trn", out_dir / "result.txt", sclite)
    check = cross_check(utt_ids, refs, hyps, trn_ids, result, max_wer_diff, str(out_dir / "result.txt"))

    all_empty = result.counts["Wrd"] == 0
    summary = {
        "ref_text": str(ref_path),
        "hyp_text": str(hyp_path),
        "num_utts": len(utt_ids),
        "num_empty_refs": sum(1 for u in utt_ids if not refs[u]),
        "counts": result.counts,
        "percent": result.percent,
        "wer": result.wer,
        "wer_note": (
            "WER undefined: every reference is empty (Wrd=0); see counts.Ins and hallucination.json"
            if all_empty
            else "WER = Err / Wrd from sclite's counts"
        ),
        "jiwer": check,
        "fields": list(SCLITE_FIELDS),
    }
    with open(out_dir / "result.json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, ensure_ascii=False)

    if nonspeech or all_empty:
        stats = hallucination_stats(refs, hyps, find_durations(ref_path, utt2num_samples, utt2dur, sample_rate))
        stats["ins_from_sclite"] = result.counts["Ins"]
        with open(out_dir / "hallucination.json", "w", encoding="utf-8") as f:
            json.dump(stats, f, indent=2, ensure_ascii=False)

    c = result.counts
    if all_empty:
        logger.info("%s: %d utts, all references empty: Ins=%d, WER undefined", out_dir, c["Snt"], c["Ins"])
    else:
        logger.info(
            "%s: WER %.2f %% (Sub %d, Del %d, Ins %d over %d words, %d utts)",
            out_dir,
            result.wer,
            c["Sub"],
            c["Del"],
            c["Ins"],
            c["Wrd"],
            c["Snt"],
        )
    return summary
