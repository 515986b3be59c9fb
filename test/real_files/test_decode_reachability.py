"""check_decode_reachability on LibriSpeech dev with the real Vicuna tokenizer: the paper's HF 3-gram decoding
bans correct transcripts, the recipe's default reaches all of them and still cuts loops; token budgets and
duration bounds are reported."""
import json
import logging
import os
import subprocess
import sys

import pytest
import yaml

from espnet_speechllm.bin import check_decode_reachability as tool
from espnet_speechllm.data.preprocess import TranscriptTokenizer
from espnet_speechllm.decode.config import load_decode_config
from espnet_speechllm.decode.constraints import SearchConstraints
from espnet_speechllm.decode.reachability import reachability, tokenize

from .conftest import (
    DEV_SETS,
    LIBRISPEECH_CONF,
    PAPER_TRAIN_YAML,
    REPO,
    VICUNA_DIR,
    dev_text,
    needs_librispeech,
    needs_vicuna,
)

pytestmark = [needs_vicuna, needs_librispeech]
DEFAULT = os.path.join(LIBRISPEECH_CONF, "decode_beam4_loop6_ngram13_lp.yaml")
HF_3GRAM = os.path.join(LIBRISPEECH_CONF, "decode_beam4_ngram3_lp.yaml")
EOS = 2


@pytest.fixture(scope="module")
def dev_ids(vicuna_tokenizer, dev_refs):
    """Vicuna ids of every dev reference as the paper config trains (text_case: lower)."""
    assert yaml.safe_load(open(PAPER_TRAIN_YAML))["text_case"] == "lower"
    preprocess = TranscriptTokenizer(vicuna_tokenizer, text_case="lower")
    return {s: tokenize(refs, preprocess) for s, refs in dev_refs.items()}


def run_tool(*args, exit_code=0):
    """The command in this process (its log records land in caplog); returns its exit status."""
    argv = ["--train_config", PAPER_TRAIN_YAML, "--tokenizer_dir", VICUNA_DIR, *args]
    try:
        tool.main(argv)
    except SystemExit as e:
        assert e.code == exit_code
        return
    assert exit_code == 0


def test_the_paper_3gram_decoding_bans_correct_transcripts(dev_ids):
    config = load_decode_config(HF_3GRAM)
    banned = {s: reachability(dev_ids[s], config, [EOS]).banned for s in DEV_SETS}
    assert {s: len(b) for s, b in banned.items()} == {"dev_clean": 88, "dev_other": 88}  # 3.26% and 3.07%
    ban = banned["dev_clean"]["1462-170142-0042"]  # DON'T CRY DON'T CRY HE WHISPERED
    assert (ban.position, ban.rule, ban.ngram) == (6, "no_repeat_ngram_size=3", (1016, 29915, 29873))  # ▁don ' t
    # max_new_tokens 128 (the old value) leaves no room for EOS after the longest reference (131 tokens)
    config.max_new_tokens = 128
    assert reachability(dev_ids["dev_clean"], config, [EOS]).over_max_new_tokens == {"5338-24615-0002": 132}


def test_the_default_reaches_every_dev_reference(dev_ids):
    config = load_decode_config(DEFAULT)
    assert (config.no_loop_ngram_size, config.no_repeat_ngram_size, config.max_new_tokens) == (6, 13, 256)
    for name in DEV_SETS:
        result = reachability(dev_ids[name], config, [EOS])
        assert result.unreachable == [] and result.num_refs == len(dev_ids[name])
    # the smaller n of each rule would ban some: the defaults are the smallest that ban none
    for smaller in (dict(no_loop_ngram_size=5), dict(no_repeat_ngram_size=12)):
        strict = load_decode_config(DEFAULT)
        for key, value in smaller.items():
            setattr(strict, key, value)
        assert sum(len(reachability(dev_ids[s], strict, [EOS]).banned) for s in DEV_SETS) > 0


def test_the_default_still_cuts_loops(dev_ids, dev_refs, vicuna_tokenizer):
    """Each dev reference followed by a typical LLM loop: the loop is banned after at most 5 tokens (the last word
    again and again) or 12 tokens (the whole transcript once more)."""
    config = load_decode_config(DEFAULT)
    rules = SearchConstraints.from_config(config, [EOS])
    preprocess = TranscriptTokenizer(vicuna_tokenizer, text_case="lower")
    refs, ids = dev_refs["dev_other"], dev_ids["dev_other"]
    utts = list(refs)
    for kind, bound in (("stutter", 5), ("phrase", 12), ("doubled", 12)):
        loops = []
        for u in utts:
            words = refs[u].split()
            tail = {"stutter": words[-1:] * 30, "phrase": words[-3:] * 10, "doubled": words}[kind]
            loops.append(preprocess(u, {"text": " ".join(words + tail)})["text"].tolist())
        for u, seq, ban in zip(utts, loops, rules.first_bans([seq + [EOS] for seq in loops])):
            inserted = len(seq) - len(ids[u])
            if inserted >= 13:  # anything shorter may be a legitimate repeat
                assert ban is not None and ban.position - len(ids[u]) <= bound, (kind, u)


def test_duration_bound(dev_ids, tmp_path):
    config = load_decode_config(DEFAULT)
    ids = dict(list(dev_ids["dev_clean"].items())[:3])
    seconds = {u: 1.0 for u in ids}  # 6 tokens/s x 1 s + 10 = 16 tokens at most
    result = reachability(ids, config, [EOS], seconds)
    assert result.over_duration_bound == {u: (len(t) + 1, 16, 1.0) for u, t in ids.items() if len(t) + 1 > 16}
    assert result.over_duration_bound
    with pytest.raises(ValueError, match="utt2dur has no duration for utterance '1272-128104-0002'"):
        reachability(ids, config, [EOS], {u: 1.0 for u in list(ids)[:2]}, source="utt2dur")


def test_command_line(tmp_path, caplog):
    """Exit status, report and JSON of the command; utt2num_samples / utt2dur; one-line errors."""
    caplog.set_level(logging.INFO)
    text = tmp_path / "text"
    lines = open(dev_text("dev_clean")).read().splitlines()
    crying = [line for line in lines if line.startswith("1462-170142-0042 ")]
    text.write_text("\n".join(lines[:20] + crying) + "\n")
    run_tool("--decode_config", HF_3GRAM, "--text", str(text), "--output_json", str(tmp_path / "r.json"),
             exit_code=1)
    assert "1462-170142-0042: token 6 't' banned by no_repeat_ngram_size=3 (repeats '▁don ' t')" in caplog.text
    assert caplog.records[-1].message == (
        f"{text}: 1 of 21 references (4.76%) cannot be decoded with {HF_3GRAM} (allowed: 0.1%)")
    report = json.load(open(tmp_path / "r.json"))
    assert report["reachable"] == 20 and list(report["banned"]) == ["1462-170142-0042"]
    run_tool("--decode_config", HF_3GRAM, "--text", str(text), "--max_unreachable_percent", "5")
    # durations: 21 utterances of 1.5 s -> bound ceil(9) + 10 = 19 tokens
    (tmp_path / "utt2num_samples").write_text("".join(f"{line.split()[0]} 24000\n" for line in lines[:20] + crying))
    caplog.clear()
    run_tool("--decode_config", DEFAULT, "--text", str(text), "--utt2num_samples", str(tmp_path / "utt2num_samples"),
             "--output_json", str(tmp_path / "d.json"), exit_code=1)
    too_long = json.load(open(tmp_path / "d.json"))["over_duration_bound"]
    assert too_long and all(v["budget"] == 19 and v["tokens"] > 19 for v in too_long.values())
    assert "longer than the duration bound" in caplog.text
    caplog.clear()
    run_tool("--decode_config", DEFAULT, "--text", str(text))
    assert "reachable: 21 of 21 (100.00%)" in caplog.text and "duration bound: not checked" in caplog.text
    # a user error is one line naming the file and the utterance, exit status 1, no traceback
    (tmp_path / "utt2dur").write_text("1272-128104-0000 5.85\n")
    cmd = [sys.executable, "-m", "espnet_speechllm.bin.check_decode_reachability", "--train_config", PAPER_TRAIN_YAML,
           "--tokenizer_dir", VICUNA_DIR, "--decode_config", DEFAULT, "--text", str(text), "--utt2dur",
           str(tmp_path / "utt2dur")]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1"))
    errors = [line for line in p.stderr.splitlines() if "ERROR" in line]
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert len(errors) == 1 and errors[0].endswith(f"{tmp_path}/utt2dur has no duration for utterance "
                                                   "'1272-128104-0001'")
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        run_tool("--decode_config", str(tmp_path / "nope.yaml"), "--text", str(text))
