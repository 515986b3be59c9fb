"""The cross-check of sclite's WER with jiwer's minimum edit distance, on the same normalized text.

A set fails when the two WERs differ by more than ``max_wer_diff`` absolute percent after accounting for the
utterances where sclite's alignment costs (substitution 4, insertion/deletion 3) choose an alignment with more
errors than jiwer's minimum edit distance; those utterances are returned (for result.json) and logged.
"""
import logging
from typing import Dict, List, Mapping, Sequence

import jiwer

from espnet_speechllm.scoring.sclite import SCLITE_COST_INS_DEL, SCLITE_COST_SUB, SCLiteResult

logger = logging.getLogger(__name__)

MAX_LISTED = 5  # keys shown in error messages
MAX_WEIGHT_DIFFS_SAVED = 50  # utterances kept in result.json


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
            f"ids without scores: {missing[:MAX_LISTED]}"
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
            [e["utt_id"] for e in explained[:MAX_LISTED]],
        )
    # With no reference words a percent does not exist; the error counts must then agree exactly.
    failed = (adj_diff > max_wer_diff) if denom else (sclite_err != jiwer_err + extra)
    if failed:
        raise ValueError(
            f"{source}: sclite and jiwer disagree: sclite Err={sclite_err}, jiwer Err={jiwer_err} "
            f"(+{extra} explained by sclite's alignment costs) over {n_ref_words} reference words "
            f"(|diff| = {adj_diff} % > {max_wer_diff} %); utterances that differ without explanation: "
            f"{[e['utt_id'] for e in unexplained[:MAX_LISTED]]}"
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
        "alignment_cost_utts": explained[:MAX_WEIGHT_DIFFS_SAVED],
        "unexplained_utts": unexplained[:MAX_WEIGHT_DIFFS_SAVED],
    }
