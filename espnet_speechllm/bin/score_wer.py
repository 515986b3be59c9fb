"""Score one decoded set with NIST sclite and cross-check the WER with jiwer (recipe stage 12).

Inputs are ESPnet ``text`` files (``utt_id word ...``; a line with only the id is an empty transcript).
Both sides go through ``espnet_speechllm.scoring.text_normalize.normalize_text``; the same normalized text
feeds sclite's ``trn`` files and jiwer.

Outputs in ``--out_dir``:
  ref.trn, hyp.trn     ``TEXT (SPK-UTT)`` lines given to sclite
  result.txt           sclite's full report (``-o all stdout``: per-speaker tables and alignments)
  result.json          parsed Sum/Avg numbers, the jiwer cross-check, the WER (null when undefined)
  hallucination.json   with ``--nonspeech true`` or when every reference is empty

The cross-check fails (exit 1) when the sclite and jiwer WERs differ by more than ``--max_wer_diff``
absolute percent after accounting for the utterances where sclite's alignment costs (substitution 4,
insertion/deletion 3) choose an alignment with more errors than jiwer's minimum edit distance; those
utterances are listed in result.json and logged.

Example:
  python -m espnet_speechllm.bin.score_wer --ref_text data/test_clean/text \\
      --hyp_text exp/asr_llm/decode_beam4/test_clean/text \\
      --out_dir exp/asr_llm/decode_beam4/test_clean/score_wer
"""

import argparse
import json
import logging
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import jiwer

from espnet_speechllm.scoring.hallucination import hallucination_stats, read_durations
from espnet_speechllm.scoring.sclite import (
    SCLITE_COST_INS_DEL,
    SCLITE_COST_SUB,
    SCLITE_FIELDS,
    SCLiteResult,
    run_sclite,
    write_trn,
)
from espnet_speechllm.scoring.text_normalize import normalize_text, read_text
from espnet_speechllm.utils.cli import UserError, run_main, setup_logging, str2bool

logger = logging.getLogger(__name__)

_MAX_LISTED = 5  # keys shown in error messages
_MAX_WEIGHT_DIFFS_SAVED = 50  # utterances kept in result.json


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Score ESPnet hypotheses with NIST sclite (WER, Corr/Sub/Del/Ins), cross-check with "
        "jiwer, and measure insertions on non-speech sets.",
    )
    parser.add_argument("--ref_text", required=True, help="reference text file (utt_id words...)")
    parser.add_argument("--hyp_text", required=True, help="hypothesis text file (utt_id words...)")
    parser.add_argument("--out_dir", required=True, help="output dir, e.g. exp/<tag>/decode_*/<set>/score_wer")
    parser.add_argument(
        "--utt2spk",
        default=None,
        help="speaker of each utterance for sclite's per-speaker tables (default: utt2spk next to "
        "--ref_text; without one, the utterance id up to its first '-' or '_')",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--utt2num_samples",
        default=None,
        help="utterance lengths in samples for hallucination.json (default: utt2num_samples, else "
        "utt2dur, next to --ref_text)",
    )
    group.add_argument("--utt2dur", default=None, help="utterance durations in seconds (see --utt2num_samples)")
    parser.add_argument(
        "--sample_rate", type=int, default=16000, help="sample rate of --utt2num_samples (default: %(default)s)"
    )
    parser.add_argument(
        "--nonspeech",
        type=str2bool,
        default=False,
        help="the set is non-speech audio: also write hallucination.json (always written when every "
        "reference is empty; default: %(default)s)",
    )
    parser.add_argument(
        "--max_wer_diff",
        type=float,
        default=0.01,
        help="largest allowed |WER(sclite) - WER(jiwer)|, absolute percent (default: %(default)s)",
    )
    parser.add_argument("--sclite", default=None, help="sclite executable (default: PATH, then sctk's)")
    parser.add_argument(
        "--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="(default: %(default)s)"
    )
    return parser


def check_same_utterances(refs: Mapping[str, str], hyps: Mapping[str, str], ref_path, hyp_path) -> None:
    """Raise ``ValueError`` listing counts and a few ids when the two files hold different utterances."""
    missing = sorted(set(refs) - set(hyps))
    extra = sorted(set(hyps) - set(refs))
    if not missing and not extra:
        return
    msg = [f"{hyp_path} and {ref_path} hold different utterances ({len(hyps)} vs {len(refs)}):"]
    if missing:
        msg.append(f"{len(missing)} missing from the hypotheses, e.g. {missing[:_MAX_LISTED]}")
    if extra:
        msg.append(f"{len(extra)} not in the references, e.g. {extra[:_MAX_LISTED]}")
    msg.append("decode every utterance of the reference set (an empty hypothesis is a line with the id only)")
    raise UserError("; ".join(msg))


def default_speaker(utt_id: str) -> str:
    """Kaldi convention: utterance ids start with the speaker id, up to the first '-' or '_'."""
    for i, ch in enumerate(utt_id):
        if ch in "-_" and i > 0:
            return utt_id[:i]
    return utt_id


def load_utt2spk(path: Optional[str], ref_text: Path, utt_ids: Sequence[str]) -> Dict[str, str]:
    if path is None and (ref_text.parent / "utt2spk").is_file():
        path = str(ref_text.parent / "utt2spk")
    if path is None:
        logger.warning("no utt2spk next to %s: speakers taken from utterance-id prefixes", ref_text)
        return {u: default_speaker(u) for u in utt_ids}
    utt2spk = read_text(path)
    missing = [u for u in utt_ids if not utt2spk.get(u, "").strip()]
    if missing:
        raise UserError(f"{path}: no speaker for {len(missing)} utterances, e.g. {missing[:_MAX_LISTED]}")
    # sclite's -i rm splits the id at the first '-', so a '-' inside a speaker id would shorten it.
    return {u: utt2spk[u].split()[0].replace("-", "_") for u in utt_ids}


def jiwer_utt_counts(refs: Sequence[str], hyps: Sequence[str]) -> List[Dict[str, int]]:
    """Per-utterance hits/sub/del/ins from jiwer's minimum-edit-distance alignment."""
    out = jiwer.process_words(list(refs), list(hyps))
    if len(out.alignments) != len(refs):
        raise RuntimeError(f"jiwer returned {len(out.alignments)} alignments for {len(refs)} utterances")
    counts = []
    for chunks in out.alignments:
        c = {"hits": 0, "sub": 0, "del": 0, "ins": 0}
        for ch in chunks:
            n_ref = ch.ref_end_idx - ch.ref_start_idx
            if ch.type == "equal":
                c["hits"] += n_ref
            elif ch.type == "substitute":
                c["sub"] += n_ref
            elif ch.type == "delete":
                c["del"] += n_ref
            elif ch.type == "insert":
                c["ins"] += ch.hyp_end_idx - ch.hyp_start_idx
        counts.append(c)
    return counts


def cross_check(
    utt_ids: Sequence[str],
    refs: Mapping[str, str],
    hyps: Mapping[str, str],
    trn_ids: Mapping[str, str],
    result: SCLiteResult,
    max_wer_diff: float,
    source: str,
) -> dict:
    """Compare sclite's numbers with jiwer's; raise ``ValueError`` on a real disagreement.

    sclite's alignment minimizes 4*S + 3*(D+I), jiwer's minimizes S+D+I, so sclite may report more
    errors on some utterances. Such an utterance is *explained* when both alignments are consistent with
    the word counts and sclite's is no more costly under sclite's weights than jiwer's. Explained extra
    errors are added to jiwer's count before the tolerance check; anything else is a failure.
    """
    counts = jiwer_utt_counts([refs[u] for u in utt_ids], [hyps[u] for u in utt_ids])
    tot = {k: sum(c[k] for c in counts) for k in ("hits", "sub", "del", "ins")}
    n_ref_words = tot["hits"] + tot["sub"] + tot["del"]
    jiwer_err = tot["sub"] + tot["del"] + tot["ins"]

    missing = [trn_ids[u] for u in utt_ids if trn_ids[u] not in result.utt_scores]
    if result.counts["Snt"] != len(utt_ids) or missing:
        raise ValueError(
            f"{source}: sclite scored {result.counts['Snt']} sentences, expected {len(utt_ids)}; "
            f"ids without scores: {missing[:_MAX_LISTED]}"
        )
    if result.counts["Wrd"] != n_ref_words:
        raise ValueError(f"{source}: sclite counts {result.counts['Wrd']} reference words, jiwer {n_ref_words}")

    explained, unexplained = [], []
    for u, c in zip(utt_ids, counts):
        s_c, s_s, s_d, s_i = result.utt_scores[trn_ids[u]]
        if s_s + s_d + s_i == c["sub"] + c["del"] + c["ins"]:
            continue
        n_ref, n_hyp = len(refs[u].split()), len(hyps[u].split())
        consistent = s_c + s_s + s_d == n_ref and s_c + s_s + s_i == n_hyp
        sclite_cost = SCLITE_COST_SUB * s_s + SCLITE_COST_INS_DEL * (s_d + s_i)
        jiwer_cost = SCLITE_COST_SUB * c["sub"] + SCLITE_COST_INS_DEL * (c["del"] + c["ins"])
        entry = {
            "utt_id": u,
            "sclite": {"Corr": s_c, "Sub": s_s, "Del": s_d, "Ins": s_i},
            "jiwer": {"Corr": c["hits"], "Sub": c["sub"], "Del": c["del"], "Ins": c["ins"]},
        }
        (explained if consistent and sclite_cost <= jiwer_cost else unexplained).append(entry)

    extra = sum(
        sum(e["sclite"][k] - e["jiwer"][k] for k in ("Sub", "Del", "Ins")) for e in explained
    )
    sclite_err = result.counts["Err"]
    denom = n_ref_words if n_ref_words > 0 else None
    jiwer_wer = 100.0 * jiwer_err / denom if denom else None
    raw_diff = abs(sclite_err - jiwer_err) * 100.0 / denom if denom else None
    adj_diff = abs(sclite_err - jiwer_err - extra) * 100.0 / denom if denom else None
    if explained:
        logger.warning(
            "%d utterances where sclite's alignment costs (sub %d, ins/del %d) give %d more errors than "
            "the minimum edit distance, e.g. %s",
            len(explained),
            SCLITE_COST_SUB,
            SCLITE_COST_INS_DEL,
            extra,
            [e["utt_id"] for e in explained[:_MAX_LISTED]],
        )
    # With no reference words a percent does not exist; the error counts must then agree exactly.
    failed = (adj_diff > max_wer_diff) if denom else (sclite_err != jiwer_err + extra)
    if failed:
        raise ValueError(
            f"{source}: sclite and jiwer disagree: sclite Err={sclite_err}, jiwer Err={jiwer_err} "
            f"(+{extra} explained by sclite's alignment costs) over {n_ref_words} reference words "
            f"(|diff| = {adj_diff} % > {max_wer_diff} %); utterances that differ without explanation: "
            f"{[e['utt_id'] for e in unexplained[:_MAX_LISTED]]}"
        )
    return {
        "wer": jiwer_wer,
        "hits": tot["hits"],
        "substitutions": tot["sub"],
        "deletions": tot["del"],
        "insertions": tot["ins"],
        "errors": jiwer_err,
        "abs_diff_percent": raw_diff,
        "alignment_cost_extra_errors": extra,
        "abs_diff_after_alignment_costs_percent": adj_diff,
        "max_wer_diff": max_wer_diff,
        "alignment_cost_utts": explained[:_MAX_WEIGHT_DIFFS_SAVED],
        "unexplained_utts": unexplained[:_MAX_WEIGHT_DIFFS_SAVED],
    }


def find_durations(args: argparse.Namespace, ref_text: Path) -> Dict[str, float]:
    num_samples, dur = args.utt2num_samples, args.utt2dur
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
    return read_durations(utt2num_samples=num_samples, utt2dur=dur, sample_rate=args.sample_rate)


def score(args: argparse.Namespace) -> dict:
    """Run the whole scoring of one set; return the content of result.json."""
    ref_path, hyp_path = Path(args.ref_text), Path(args.hyp_text)
    out_dir = Path(args.out_dir)
    refs_raw, hyps_raw = read_text(ref_path), read_text(hyp_path)
    if not refs_raw:
        raise UserError(f"{ref_path}: no utterances")
    check_same_utterances(refs_raw, hyps_raw, ref_path, hyp_path)
    utt_ids = sorted(refs_raw)
    refs = {u: normalize_text(refs_raw[u]) for u in utt_ids}
    hyps = {u: normalize_text(hyps_raw[u]) for u in utt_ids}
    utt2spk = load_utt2spk(args.utt2spk, ref_path, utt_ids)

    out_dir.mkdir(parents=True, exist_ok=True)
    # Outputs of an earlier run must not survive a failed or different one (make_report reads them).
    for stale in ("result.json", "hallucination.json"):
        (out_dir / stale).unlink(missing_ok=True)
    trn_ids = write_trn(out_dir / "ref.trn", refs, utt2spk, utt_ids)
    write_trn(out_dir / "hyp.trn", hyps, utt2spk, utt_ids)
    result = run_sclite(out_dir / "ref.trn", out_dir / "hyp.trn", out_dir / "result.txt", args.sclite)
    check = cross_check(utt_ids, refs, hyps, trn_ids, result, args.max_wer_diff, str(out_dir / "result.txt"))

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

    if args.nonspeech or all_empty:
        stats = hallucination_stats(refs, hyps, find_durations(args, ref_path))
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


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    score(args)


if __name__ == "__main__":
    run_main(main)
