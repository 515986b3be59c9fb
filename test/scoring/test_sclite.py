"""Stage 12 scoring: normalization, trn files, the real sclite binary, the jiwer cross-check."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import espnet_speechllm
from espnet_speechllm.bin import score_wer
from espnet_speechllm.scoring.jiwer_check import cross_check
from espnet_speechllm.scoring.sclite import parse_report, run_sclite, write_trn
from espnet_speechllm.scoring.text_normalize import normalize_text, read_text

# Hand-written set; expected counts reasoned per utterance (after normalization):
#   u1  THE CAT SAT ON THE MAT   / THE CAT SAT ON A MAT     1 sub              6 ref words
#   u2  HELLO THERE WORLD        / HELLO WORLD              1 del              3
#   u3  GOOD MORNING             / GOOD MORNING TO YOU      2 ins              2
#   u4  ONE TWO THREE            / "one, two... three!"     0 (punctuation)    3
#   u5  IT'S FINE                / "it’s Fine"              0 (apostrophe)     2
#   u6  A B C D                  / (empty)                  4 del              4
#   u7  (empty)                  / uh                       1 ins              0
# Snt 7, Wrd 20, Corr 14, Sub 1, Del 5, Ins 3, Err 9, S.Err 5 (u1 u2 u3 u6 u7).
REFS = {
    "u1": "THE CAT SAT ON THE MAT",
    "u2": "HELLO THERE WORLD",
    "u3": "GOOD MORNING",
    "u4": "ONE TWO THREE",
    "u5": "IT'S FINE",
    "u6": "A B C D",
    "u7": "",
}
HYPS = {
    "u1": "the cat sat on a mat",
    "u2": "hello world",
    "u3": "good morning to you",
    "u4": "one, two... three!",
    "u5": "it\u2019s Fine",
    "u6": "",
    "u7": "uh",
}
# Subprocesses find the package whether or not it is installed.
ENV = {**os.environ, "PYTHONPATH": str(Path(espnet_speechllm.__file__).resolve().parents[1])}
UTT2SPK = {"u1": "spkA", "u2": "spkA", "u3": "spkA", "u4": "spkB", "u5": "spkB", "u6": "spkB", "u7": "spkB"}


def test_normalize_text():
    assert normalize_text("  Hello,   world!  ") == "HELLO WORLD"
    assert normalize_text("don\u2019t stop") == "DON'T STOP"
    assert normalize_text("well-known (sic) 'quote'") == "WELL KNOWN SIC 'QUOTE'"
    assert normalize_text("\uff21\uff22 c\td\n") == "AB C D"  # full-width letters, tabs, newline
    assert normalize_text("...") == ""


def test_read_text_empty_lines_and_bad_bytes(tmp_path):
    path = tmp_path / "text"
    path.write_bytes(b"a hello world\nb\nc   \n")
    assert read_text(path) == {"a": "hello world", "b": "", "c": ""}

    path.write_bytes(b"a ok\nb caf\xe9\n")  # Latin-1, not UTF-8
    with pytest.raises(ValueError, match=r"text:2: not valid UTF-8"):
        read_text(path)

    path.write_bytes(b"a x\na y\n")
    with pytest.raises(ValueError, match=r"text:2: duplicate utterance id 'a'"):
        read_text(path)


def test_write_trn_uses_espnet_speaker_prefix(tmp_path):
    ids = write_trn(tmp_path / "ref.trn", {"u1": "A B", "u2": ""}, {"u1": "s1", "u2": "s2"})
    assert ids == {"u1": "s1-u1", "u2": "s2-u2"}  # as sclite reports them
    assert (tmp_path / "ref.trn").read_text() == "A B (s1-u1)\n (s2-u2)\n"
    with pytest.raises(ValueError, match="cannot be written"):
        write_trn(tmp_path / "bad.trn", {"u(1)": "A"}, {"u(1)": "s"})
    # sclite lowercases ids in its report: two ids differing only in case would be merged.
    assert write_trn(tmp_path / "c.trn", {"U1": "A"}, {"U1": "Spk"}) == {"U1": "spk-u1"}
    with pytest.raises(ValueError, match="differ only in letter case"):
        write_trn(tmp_path / "d.trn", {"U1": "A", "u1": "B"}, {"U1": "s", "u1": "s"})


def test_known_sub_del_ins_counts_sclite_and_jiwer_agree(tmp_path, score_set):
    res = score_set(tmp_path, REFS, HYPS, utt2spk=UTT2SPK)
    r = res["result"]
    assert r["counts"] == {
        "Snt": 7, "Wrd": 20, "Corr": 14, "Sub": 1, "Del": 5, "Ins": 3, "Err": 9, "S.Err": 5
    }
    assert r["percent"] == {"Corr": 70.0, "Sub": 5.0, "Del": 25.0, "Ins": 15.0, "Err": 45.0, "S.Err": 71.4}
    assert r["wer"] == pytest.approx(45.0)
    j = r["jiwer"]
    assert (j["hits"], j["substitutions"], j["deletions"], j["insertions"]) == (14, 1, 5, 3)
    assert j["wer"] == pytest.approx(45.0)
    assert j["abs_diff_percent"] == 0.0
    # Speech set with references and no --nonspeech: no hallucination report.
    assert res["hallucination"] is None

    out = res["out"]
    ref_trn = (out / "ref.trn").read_text().splitlines()
    assert "THE CAT SAT ON THE MAT (spkA-u1)" in ref_trn
    assert " (spkB-u7)" in ref_trn
    assert "IT'S FINE (spkB-u5)" in (out / "hyp.trn").read_text().splitlines()
    report = (out / "result.txt").read_text()
    # sclite's own per-speaker table (ids lowercased by sclite): spkA has 11 words and 4 errors, spkB 9 and 5.
    spk_rows = {
        cells[0]: cells[1].split() + cells[2].split()
        for cells in ([c.strip() for c in line.strip().strip("|").split("|")] for line in report.splitlines())
        if len(cells) == 3 and cells[0] in ("spka", "spkb")
    }
    # The last row per speaker is from the count table (the first table holds percentages).
    assert spk_rows["spka"][:2] == ["3", "11"] and spk_rows["spkb"][:2] == ["4", "9"]
    assert spk_rows["spka"][6] == "4" and spk_rows["spkb"][6] == "5"
    # Parsing the saved report gives the same numbers as the run.
    assert parse_report(report).counts == r["counts"]


def test_all_empty_references_wer_undefined(tmp_path, score_set):
    refs = {"n1": "", "n2": "", "n3": ""}
    hyps = {"n1": "", "n2": "uh huh", "n3": "Thank you for watching."}
    res = score_set(tmp_path, refs, hyps, utt2dur={"n1": 1.5, "n2": 2.5, "n3": 2.0})
    r = res["result"]
    assert r["counts"] == {"Snt": 3, "Wrd": 0, "Corr": 0, "Sub": 0, "Del": 0, "Ins": 6, "Err": 6, "S.Err": 2}
    assert r["wer"] is None and "undefined" in r["wer_note"]
    # sclite prints 0.0 for these percentages when Wrd = 0; they must not be reported as a rate.
    assert all(r["percent"][k] is None for k in ("Corr", "Sub", "Del", "Ins", "Err"))
    assert r["percent"]["S.Err"] == pytest.approx(66.7)
    assert r["jiwer"]["insertions"] == 6 and r["jiwer"]["wer"] is None
    # Every reference empty -> hallucination.json even without --nonspeech.
    h = res["hallucination"]
    assert h["num_nonempty_hyp"] == 2 and h["inserted_words"] == 6
    assert h["inserted_chars"] == len("UHHUHTHANKYOUFORWATCHING")
    assert h["audio_minutes"] == pytest.approx(0.1)
    assert h["inserted_words_per_min"] == pytest.approx(60.0)
    assert h["ins_from_sclite"] == 6


def test_missing_hypothesis_fails_with_key(tmp_path, score_set):
    hyps = {k: v for k, v in HYPS.items() if k != "u4"}
    with pytest.raises(ValueError, match=r"1 missing from the hypotheses, e\.g\. \['u4'\]"):
        score_set(tmp_path, REFS, hyps)
    extra = dict(HYPS, zz9="stray")
    with pytest.raises(ValueError, match=r"1 not in the references, e\.g\. \['zz9'\]"):
        score_set(tmp_path / "b", REFS, extra)


def test_missing_hypothesis_cli_exit_code(tmp_path, sclite_bin, write_kaldi):
    write_kaldi(tmp_path / "ref", {"a1": "X", "a2": "Y"})
    write_kaldi(tmp_path / "hyp", {"a1": "X"})
    proc = subprocess.run(
        [sys.executable, "-m", "espnet_speechllm.bin.score_wer", "--ref_text", str(tmp_path / "ref"),
         "--hyp_text", str(tmp_path / "hyp"), "--out_dir", str(tmp_path / "out")],
        capture_output=True, text=True, env=ENV,
    )
    assert proc.returncode == 1
    assert "['a2']" in proc.stderr and "Traceback" not in proc.stderr


def test_non_utf8_hypothesis_fails_naming_line(tmp_path, sclite_bin, write_kaldi):
    write_kaldi(tmp_path / "data" / "text", {"a1": "CAFE", "a2": "TEA", "a3": "MILK"})
    (tmp_path / "hyp").write_bytes(b"a1 cafe\na2 tea\na3 caf\xe9 milk\n")
    args = ["--ref_text", str(tmp_path / "data" / "text"), "--hyp_text", str(tmp_path / "hyp"),
            "--out_dir", str(tmp_path / "out"), "--sclite", sclite_bin]
    with pytest.raises(ValueError, match=r"hyp:3: not valid UTF-8"):
        score_wer.main(args)


def test_sclite_alignment_costs_are_accounted_for(tmp_path, score_set):
    # sclite minimizes 4*S + 3*(D+I): here it reports 4 del + 2 ins (6 errors, cost 18) where the minimum
    # edit distance is 3 sub + 2 del (5 errors, cost 18). Found by comparing both on random strings.
    refs = {"x1": "B C C C A A C A A", "x2": "A B C D E F G H I J"}
    hyps = {"x1": "A A B C A A C", "x2": "A B C D E F G H I J"}
    res = score_set(tmp_path, refs, hyps)
    r = res["result"]
    assert r["counts"]["Err"] == 6 and r["counts"]["Wrd"] == 19
    j = r["jiwer"]
    assert j["errors"] == 5
    assert j["alignment_cost_extra_errors"] == 1
    assert j["abs_diff_percent"] == pytest.approx(100 / 19)
    assert j["abs_diff_after_alignment_costs_percent"] == 0.0
    assert [u["utt_id"] for u in j["alignment_cost_utts"]] == ["x1"]


def test_cross_check_fails_on_real_disagreement(tmp_path, sclite_bin):
    refs, hyps = {"u1": "A B C", "u2": "D E"}, {"u1": "A B C", "u2": "D X"}
    ids = write_trn(tmp_path / "ref.trn", refs, {"u1": "s", "u2": "s"})
    write_trn(tmp_path / "hyp.trn", hyps, {"u1": "s", "u2": "s"})
    result = run_sclite(tmp_path / "ref.trn", tmp_path / "hyp.trn", tmp_path / "result.txt", sclite_bin)
    assert result.counts["Err"] == 1
    cross_check(sorted(refs), refs, hyps, ids, result, 0.01, "ok")  # agrees: no exception
    # A report claiming one more insertion than the hypothesis has words cannot come from an alignment.
    result.counts["Err"] += 1
    result.counts["Ins"] += 1
    result.utt_scores[ids["u1"]] = (3, 0, 0, 1)
    with pytest.raises(ValueError, match=r"sclite and jiwer disagree.*\['u1'\]"):
        cross_check(sorted(refs), refs, hyps, ids, result, 0.01, "forged")


def test_speakers_from_utt_id_prefix_without_utt2spk(tmp_path, score_set):
    res = score_set(tmp_path, {"1089-134686-0000": "A B"}, {"1089-134686-0000": "A"})
    assert (res["out"] / "ref.trn").read_text() == "A B (1089-1089-134686-0000)\n"
    assert res["result"]["counts"]["Del"] == 1


def test_score_wer_help():
    proc = subprocess.run(
        [sys.executable, "-m", "espnet_speechllm.bin.score_wer", "--help"], capture_output=True, text=True, env=ENV
    )
    assert proc.returncode == 0
    for opt in ("--ref_text", "--hyp_text", "--out_dir", "--utt2num_samples", "--utt2dur", "--nonspeech"):
        assert opt in proc.stdout
