"""The synth recipe's decoding configs pass check_decode_reachability on its own test sets (the default preset's
sentences and a tokenizer built as stage 7 builds it); the paper's HF 3-gram rule would not."""
import json
import logging
import os
import subprocess
import sys

import pytest
import yaml

from espnet_speechllm.bin import check_decode_reachability as tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYNTH_CONF = os.path.join(REPO, "egs2", "synth_llm", "asr1", "conf")


@pytest.fixture(scope="module")
def synth_sets(tmp_path_factory):
    """Kaldi text of test_clean / test_other / test_nonspeech_edges / nonspeech_test as synth_corpus --preset
    default makes them, and the stand-in LLM's tokenizer (stage 7: sentencepiece BPE on the LLM text pool)."""
    from espnet_speechllm.datagen.corpus_plan import PRESETS
    from espnet_speechllm.datagen.sentences import make_pools
    from espnet_speechllm.pretrain.tokenizer import train_llama_tokenizer

    root = tmp_path_factory.mktemp("synth")
    sizes = PRESETS["default"]
    a, b = sizes["test_clean"], sizes["test_clean"] + sizes["test_other"]
    pools = make_pools({"test": b + sizes["test_nonspeech_edges"], "dev": sizes["dev"], "train": sizes["train"],
                        "pretrain_encoder": sizes["pretrain_encoder"], "lm_text": sizes["lm_text"]}, seed=0)
    texts = {"test_clean": pools["test"][:a], "test_other": pools["test"][a:b],
             "test_nonspeech_edges": pools["test"][b:], "nonspeech_test": [""] * 100}
    files = {}
    for name, sentences in texts.items():
        files[name] = root / f"{name}.txt"
        files[name].write_text("".join(f"{name}-{i:04d} {s}".rstrip() + "\n" for i, s in enumerate(sentences)))
    (root / "lm_text.txt").write_text("\n".join(pools["lm_text"]) + "\n")
    vocab = yaml.safe_load(open(os.path.join(SYNTH_CONF, "tiny_models.yaml")))["tokenizer"]["vocab_size"]
    train_llama_tokenizer(str(root / "lm_text.txt"), str(root / "llm"), vocab)
    return files, str(root / "llm")


def check(files, tokenizer_dir, decode_config, name, tmp_path):
    out = tmp_path / f"{name}.json"
    try:
        tool.main(["--train_config", os.path.join(SYNTH_CONF, "train.yaml"), "--decode_config", decode_config,
                   "--text", str(files[name]), "--tokenizer_dir", tokenizer_dir, "--output_json", str(out)])
    except SystemExit as e:
        assert e.code == 1
    return json.load(open(out))


@pytest.mark.parametrize("decode_config", ["decode.yaml", "decode_debug.yaml", "decode_greedy.yaml"])
def test_synth_decode_configs_reach_every_test_reference(synth_sets, decode_config, tmp_path):
    files, tokenizer_dir = synth_sets
    for name in files:
        report = check(files, tokenizer_dir, os.path.join(SYNTH_CONF, decode_config), name, tmp_path)
        assert report["reachable_percent"] == 100.0, (decode_config, name, report)


def test_the_hf_3gram_rule_would_ban_synth_references(synth_sets, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    files, tokenizer_dir = synth_sets
    conf = tmp_path / "ngram3.yaml"
    conf.write_text(yaml.safe_dump(dict(yaml.safe_load(open(os.path.join(SYNTH_CONF, "decode.yaml"))),
                                        no_repeat_ngram_size=3, no_loop_ngram_size=0)))
    banned = {name: check(files, tokenizer_dir, str(conf), name, tmp_path)["banned"] for name in files}
    assert {name: len(b) for name, b in banned.items()} == {
        "test_clean": 0, "test_other": 1, "test_nonspeech_edges": 1, "nonspeech_test": 0}
    assert "ROSE'S FRIEND WILL WANT THE FRIENDLY DOOR ON THURSDAY" in caplog.text


def test_help():
    p = subprocess.run([sys.executable, "-m", "espnet_speechllm.bin.check_decode_reachability", "--help"],
                       capture_output=True, text=True, check=True)
    for option in ("--train_config", "--decode_config", "--text", "--tokenizer_dir", "--utt2dur", "--utt2num_samples",
                   "--max_unreachable_percent", "--output_json"):
        assert option in p.stdout
