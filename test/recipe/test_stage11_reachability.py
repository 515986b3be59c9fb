"""Stage 11 checks each test set's references against the decoding config before decoding: the real
check_decode_reachability on a real sentencepiece tokenizer, the decoder itself a stand-in (test_asr_llm_stages)."""
import json
import sys

import pytest
import yaml

from .conftest import run, stub_recipe
from .test_asr_llm_stages import FAKE, fake_dump

# The reachability check runs for real; every other entry point is the recording stand-in.
PASS_THROUGH = '''import os, sys
if sys.argv[1:3] == ["-m", "espnet_speechllm.bin.check_decode_reachability"]:
    with open(os.environ["FAKE_CALLS"], "a") as f:
        f.write("check_decode_reachability " + " ".join(sys.argv[3:]) + "\\n")
    os.execv(sys.executable, [sys.executable] + sys.argv[1:])
'''


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from espnet_speechllm.pretrain.tokenizer import train_llama_tokenizer

    root = tmp_path_factory.mktemp("tok")
    (root / "text.txt").write_text("HI THERE\nHELLO THERE HOW ARE YOU\nTHE CAT SAT ON THE MAT\n" * 20)
    train_llama_tokenizer(str(root / "text.txt"), str(root / "llm"), 300)
    return str(root / "llm")


@pytest.fixture
def recipe(tmp_path, tokenizer_dir):
    r = stub_recipe(tmp_path)
    (r / "conf" / "decode_ok.yaml").write_text(yaml.safe_dump({"beam_size": 2, "no_loop_ngram_size": 6}))
    (r / "conf" / "decode_short.yaml").write_text(yaml.safe_dump({"beam_size": 2, "max_new_tokens": 2}))
    fake = tmp_path / "fakepy.py"
    fake.write_text(PASS_THROUGH + FAKE)
    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {fake} \"$@\"\n")
    wrapper.chmod(0o755)
    dump = r / "dump" / "raw"
    fake_dump(str(dump / "test_clean"), [f"t{i}-u0" for i in range(3)])  # "HI THERE" each
    fake_dump(str(dump / "nonspeech_test"), ["ns-a", "ns-b"], empty=True)
    (dump / "test_clean" / "utt2num_samples").write_text("".join(f"t{i}-u0 32000\n" for i in range(3)))
    exp = r / "exp" / "asr_llm_train_tiny"
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text(yaml.safe_dump({"llm_conf": {"model_dir": tokenizer_dir}, "text_case": "keep"}))
    (exp / "valid.acc.ave.pth").write_text("")
    return dict(dir=str(r), python=str(wrapper), calls=str(tmp_path / "calls.txt"))


def stage11(recipe, decode_config):
    return run(["./asr_llm.sh", "--stage", "11", "--stop_stage", "11", "--python", recipe["python"],
                "--inference_nj", "1", "--ngpu", "0", "--train_set", "train", "--valid_set", "dev",
                "--test_sets", "test_clean", "--train_config", "conf/train_tiny.yaml",
                "--inference_config", decode_config], cwd=recipe["dir"], FAKE_CALLS=recipe["calls"])


def calls(recipe, mod):
    return [line.split()[1:] for line in open(recipe["calls"]) if line.split()[0] == mod]


def test_each_set_is_checked_before_decoding(recipe):
    p = stage11(recipe, "conf/decode_ok.yaml")
    out = p.stderr
    assert "test_clean: reachable: 3 of 3 (100.00%) references under conf/decode_ok.yaml" in out
    assert "nonspeech_test: reachable: 2 of 2 (100.00%)" in out and "WARNING" not in out
    checks = calls(recipe, "check_decode_reachability")
    assert [c[c.index("--text") + 1] for c in checks] == ["dump/raw/test_clean/text", "dump/raw/nonspeech_test/text"]
    assert checks[0][checks[0].index("--utt2num_samples") + 1] == "dump/raw/test_clean/utt2num_samples"
    assert "--utt2num_samples" not in checks[1]  # that set has none
    assert all(c[c.index("--train_config") + 1] == "exp/asr_llm_train_tiny/config.yaml" for c in checks)
    report = json.load(open(f"{recipe['dir']}/exp/asr_llm_train_tiny/decode_ok_valid.acc.ave/test_clean/"
                            "logdir/reachability.json"))
    assert report["reachable"] == 3 and report["decode_config"]["no_loop_ngram_size"] == 6
    assert len(calls(recipe, "speechllm_inference")) == 2


def test_unreachable_references_warn_and_decoding_goes_on(recipe):
    p = stage11(recipe, "conf/decode_short.yaml")
    logdir = "exp/asr_llm_train_tiny/decode_short_valid.acc.ave/test_clean/logdir"
    assert ("WARNING: test_clean: dump/raw/test_clean/text: 3 of 3 references (100.00%) cannot be decoded with "
            "conf/decode_short.yaml (allowed: 0.1%)") in p.stderr
    assert f"WARNING: see {logdir}/reachability.log; decoding anyway" in p.stderr
    assert "longer than max_new_tokens=2 (EOS included): 3" in open(f"{recipe['dir']}/{logdir}/reachability.log").read()
    assert len(calls(recipe, "speechllm_inference")) == 2 and "Successfully finished" in p.stderr
