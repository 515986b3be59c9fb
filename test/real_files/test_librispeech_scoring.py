"""Real-text scoring: LibriSpeech dev references against Vicuna-style hypotheses (the references lower-cased as
``text_case: lower`` trains, tokenized, and written back by the decoder's own writer) give 0.0% WER through the
scoring normalization and the real NIST sclite (stage 12's score_wer)."""
import json

import pytest

from espnet_speechllm.bin import score_wer
from espnet_speechllm.bin.speechllm_inference import HypothesisWriter
from espnet_speechllm.data.preprocess import TranscriptTokenizer
from espnet_speechllm.decode.beam_search import Hypothesis
from espnet_speechllm.scoring.sclite import find_sclite

from .conftest import DEV_SETS, dev_text, needs_librispeech, needs_vicuna

pytestmark = [needs_vicuna, needs_librispeech,
              pytest.mark.skipif(find_sclite() is None, reason="NIST sclite not installed (Debian package 'sctk')")]
WORDS = {"dev_clean": 54402, "dev_other": 50948}  # SOURCES.md


def write_hypotheses(tokenizer, refs: dict, out_dir) -> str:
    """What stage 11 writes for a model that outputs every reference exactly (lower case, Vicuna tokens)."""
    preprocess = TranscriptTokenizer(tokenizer, text_case="lower")
    writer = HypothesisWriter(str(out_dir), 1, tokenizer)
    for utt, text in refs.items():
        writer.write(utt, [Hypothesis(preprocess(utt, {"text": text})["text"].tolist(), 0.0)])
    writer.close()
    return str(out_dir / "1best_recog" / "text")


def score(ref_text: str, hyp_text: str, out_dir) -> dict:
    score_wer.main(["--ref_text", ref_text, "--hyp_text", hyp_text, "--out_dir", str(out_dir)])
    return json.load(open(out_dir / "result.json"))


@pytest.mark.parametrize("name", DEV_SETS)
def test_round_tripped_references_score_zero_wer_with_sclite(vicuna_tokenizer, dev_refs, name, tmp_path):
    refs = dev_refs[name]
    hyp_text = write_hypotheses(vicuna_tokenizer, refs, tmp_path / "decode")
    hyps = dict(line.rstrip("\n").split(" ", 1) for line in open(hyp_text))
    assert hyps == {u: t.lower() for u, t in refs.items()}  # lower case, as a Vicuna model trained so outputs
    result = score(dev_text(name), hyp_text, tmp_path / "score")
    counts = result["counts"]
    assert (counts["Snt"], counts["Wrd"]) == (len(refs), WORDS[name])
    assert (counts["Sub"], counts["Del"], counts["Ins"], counts["Err"]) == (0, 0, 0, 0)
    assert result["percent"]["Err"] == 0.0 and result["wer"] == 0.0
    assert "Sum/Avg" in open(tmp_path / "score" / "result.txt").read()


def test_one_wrong_word_is_one_error(vicuna_tokenizer, dev_refs, tmp_path):
    """The control: the same pipeline sees a single substituted word among 54,402."""
    refs = dict(dev_refs["dev_clean"])
    utt = next(iter(refs))
    words = refs[utt].split()
    refs[utt] = " ".join(["QUILTERS" if w == "QUILTER" else w for w in words])
    result = score(dev_text("dev_clean"), write_hypotheses(vicuna_tokenizer, refs, tmp_path / "decode"),
                   tmp_path / "score")
    assert (result["counts"]["Sub"], result["counts"]["Err"]) == (1, 1)
    assert result["percent"]["Err"] == pytest.approx(100 / 54402, abs=0.05)
