"""make_tiny_models with pretraining: both models train, load back through the real-checkpoint path, and
the encoder's held-out greedy CTC CER is reported."""
import hashlib
import json
import subprocess

import pytest
import yaml
from transformers import AutoTokenizer

from espnet_speechllm.bin import make_tiny_models
from espnet_speechllm.encoder.hf_speech_encoder import HFSpeechEncoder
from espnet_speechllm.llm.hf_causal_lm import HFCausalLM


def test_pretrained_tiny_models(speech_corpus, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("".join(line.split(maxsplit=1)[1] + "\n" for line in open(f"{speech_corpus}/text")) * 5)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"pretrain": {
        "llm_steps": 5, "llm_mix": {"plain": 0.5, "copy": 0.25, "random_copy": 0.25}, "llm_robust_steps": 3,
        "encoder_steps": 5,
        "encoder_batch_size": 4, "encoder_units": "llm_tokens", "encoder_speeds": [0.9, 1.1],
        "encoder_noise_prob": 0.5}}))
    out = tmp_path / "pretrained"
    make_tiny_models.main(["--output_dir", str(out), "--text", str(text), "--pretrain_data", speech_corpus,
                           "--config", str(config)])
    report = json.loads((out / "encoder" / "pretrain_report.json").read_text())
    assert report["heldout_utts"] == 1 and 0.0 <= report["heldout_greedy_ctc_cer"]
    llm_report = json.loads((out / "llm" / "pretrain_report.json").read_text())
    for key in ("copy_token_accuracy_heldout_sentences", "copy_token_accuracy_random_strings",
                "copy_token_accuracy_fillers_noise1_heldout_sentences"):
        assert 0.0 <= llm_report[key] <= 1.0
    assert llm_report["heldout_perplexity"] > 1.0
    tokenizer = AutoTokenizer.from_pretrained(out / "llm")
    # CTC units are the LLM's tokens: blank, then the tokenizer's vocabulary in id order.
    vocab = json.loads((out / "encoder" / "ctc_vocab.json").read_text())
    assert vocab[0] == "<blank>" and vocab[1:] == tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    assert tokenizer.decode(tokenizer("THE CAT SAT").input_ids, skip_special_tokens=True) == "THE CAT SAT"
    assert HFCausalLM(str(out / "llm"), finetune="frozen").hidden_size == 128
    assert HFSpeechEncoder(str(out / "encoder")).output_size() == 128
    # A second call with the same inputs finds the done-marker and leaves everything as it is; other inputs stop.
    mtime = (out / "llm" / "model.safetensors").stat().st_mtime
    args = ["--output_dir", str(out), "--text", str(text), "--pretrain_data", speech_corpus, "--config", str(config)]
    make_tiny_models.main(args)
    assert (out / "llm" / "model.safetensors").stat().st_mtime == mtime
    with pytest.raises(SystemExit, match="another config or other data"):
        make_tiny_models.main(["--output_dir", str(out), "--text", str(text)])
    assert (out / "llm" / "model.safetensors").stat().st_mtime == mtime
    # build_info.json and SHA256SUMS describe the build; sha256sum checks every file.
    info = json.loads((out / "build_info.json").read_text())
    assert info["sha256"]["config"] == hashlib.sha256(config.read_bytes()).hexdigest() and info["wall_time_s"] > 0
    subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=out, check=True)
    assert info["rebuilt"] == ["llm", "encoder"] and info["from_scratch_time_s"] > 0
    # An encoder setting changed: --force true retrains the encoder only; the LLM and its tokenizer are kept.
    encoder_mtime = (out / "encoder" / "model.safetensors").stat().st_mtime
    config.write_text(yaml.safe_dump({"pretrain": {**yaml.safe_load(config.read_text())["pretrain"], "encoder_steps": 3}}))
    with pytest.raises(SystemExit, match="another config"):
        make_tiny_models.main(args)
    make_tiny_models.main(args + ["--force", "true"])
    assert (out / "llm" / "model.safetensors").stat().st_mtime == mtime
    assert (out / "encoder" / "model.safetensors").stat().st_mtime != encoder_mtime
    info = json.loads((out / "build_info.json").read_text())
    assert info["rebuilt"] == ["encoder"] and info["llm_time_s"] > 0
    subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=out, check=True)
