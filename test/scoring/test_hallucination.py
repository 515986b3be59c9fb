"""Insertion metrics on non-speech sets: durations, inserted words/characters per minute."""
import pytest

from espnet_speechllm.scoring.hallucination import hallucination_stats, inserted_words, read_durations


def test_read_durations_from_samples_and_seconds(tmp_path, write_kaldi):
    ns = write_kaldi(tmp_path / "utt2num_samples", {"a": "16000", "b": "40000"})
    assert read_durations(utt2num_samples=ns) == {"a": 1.0, "b": 2.5}
    assert read_durations(utt2num_samples=ns, sample_rate=8000) == {"a": 2.0, "b": 5.0}
    dur = write_kaldi(tmp_path / "utt2dur", {"a": "1.25", "b": "3"})
    assert read_durations(utt2dur=dur) == {"a": 1.25, "b": 3.0}

    bad = write_kaldi(tmp_path / "bad", {"a": "1.0", "b": "one"})
    with pytest.raises(ValueError, match=r"bad:2: not a number"):
        read_durations(utt2dur=bad)
    with pytest.raises(ValueError, match="exactly one"):
        read_durations(utt2num_samples=ns, utt2dur=dur)


def test_inserted_words():
    assert inserted_words("", "THANK YOU") == ["THANK", "YOU"]
    assert inserted_words("", "") == []
    # Substitutions and deletions are not insertions; only the extra hypothesis words are.
    assert inserted_words("A B C", "X A B Y C Z Z") == ["X", "Y", "Z", "Z"]
    assert inserted_words("A B C", "A D") == []


def test_hallucination_stats_numbers():
    refs = {"n1": "", "n2": "", "n3": "", "n4": ""}
    hyps = {"n1": "", "n2": "OH", "n3": "", "n4": "SUBSCRIBE TO MY CHANNEL"}
    durs = {"n1": 10.0, "n2": 20.0, "n3": 15.0, "n4": 15.0}  # one minute in all
    s = hallucination_stats(refs, hyps, durs)
    assert s["num_utts"] == 4 and s["num_empty_refs"] == 4
    assert s["num_nonempty_hyp"] == 2 and s["nonempty_hyp_percent"] == pytest.approx(50.0)
    assert s["inserted_words"] == 5
    assert s["inserted_chars"] == len("OHSUBSCRIBETOMYCHANNEL")
    assert s["audio_minutes"] == pytest.approx(1.0)
    assert s["inserted_words_per_min"] == pytest.approx(5.0)
    assert s["inserted_chars_per_min"] == pytest.approx(22.0)
    assert [e["utt_id"] for e in s["examples"]] == ["n4", "n2"]  # longest first


def test_hallucination_stats_missing_duration():
    with pytest.raises(ValueError, match=r"no duration for 1 of 2 utterances, e\.g\. \['b'\]"):
        hallucination_stats({"a": "", "b": ""}, {"a": "", "b": "X"}, {"a": 1.0})


def test_score_wer_nonspeech_flag_on_speech_refs(tmp_path, score_set, write_kaldi):
    # --nonspeech true on a set that still has references: insertions come from the alignment only.
    write_kaldi(tmp_path / "data" / "utt2num_samples", {"m1": "480000", "m2": "480000"})  # 2 x 30 s
    res = score_set(
        tmp_path,
        {"m1": "", "m2": "NOISE BURST"},
        {"m1": "music music", "m2": "noise burst again"},
        extra_args=["--nonspeech", "true"],
    )
    h = res["hallucination"]
    assert h["inserted_words"] == 3 and h["inserted_chars"] == len("MUSICMUSICAGAIN")
    assert h["audio_minutes"] == pytest.approx(1.0)
    assert h["num_empty_refs"] == 1
    assert h["ins_from_sclite"] == res["result"]["counts"]["Ins"] == 3


def test_score_wer_nonspeech_needs_durations(tmp_path, score_set):
    with pytest.raises(ValueError, match="need durations"):
        score_set(tmp_path, {"m1": ""}, {"m1": "la la"})
    # An explicit duration file that lacks an utterance is an error naming it.
    with pytest.raises(ValueError, match=r"no duration for 1 of 2 utterances, e\.g\. \['m2'\]"):
        score_set(tmp_path / "b", {"m1": "", "m2": ""}, {"m1": "", "m2": "x"}, utt2dur={"m1": 1.0})
