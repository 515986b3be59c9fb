"""make_tiny_models with pretraining: both models train, load back through the real-checkpoint path, and
the encoder's held-out greedy CTC CER is reported."""
import json

import yaml
from transformers import AutoTokenizer

from espnet_speechllm.bin import make_tiny_models
from espnet_speechllm.encoder.hf_speech_encoder import HFSpeechEncoder
from espnet_speechllm.llm.hf_causal_lm import HFCausalLM


def test_pretrained_tiny_models(speech_corpus, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("".join(line.split(maxsplit=1)[1] + "\n" for line in open(f"{speech_corpus}/text")) * 5)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"pretrain": {"llm_steps": 5, "llm_copy_fraction": 0.5, "encoder_steps": 5, "encoder_batch_size": 4}}))
    out = tmp_path / "pretrained"
    make_tiny_models.main(["--output_dir", str(out), "--text", str(text), "--pretrain_data", speech_corpus,
                           "--config", str(config)])
    report = json.loads((out / "encoder" / "pretrain_report.json").read_text())
    assert report["heldout_utts"] == 1 and 0.0 <= report["heldout_greedy_ctc_cer"]
    assert 0.0 <= json.loads((out / "llm" / "pretrain_report.json").read_text())["copy_token_accuracy"] <= 1.0
    vocab = json.loads((out / "encoder" / "ctc_vocab.json").read_text())
    assert vocab[0] == "<blank>" and "A" in vocab
    tokenizer = AutoTokenizer.from_pretrained(out / "llm")
    assert tokenizer.decode(tokenizer("THE CAT SAT").input_ids, skip_special_tokens=True) == "THE CAT SAT"
    assert HFCausalLM(str(out / "llm"), finetune="frozen").hidden_size == 128
    assert HFSpeechEncoder(str(out / "encoder")).output_size() == 128
    # A second call finds the done-marker and leaves everything as it is.
    mtime = (out / "llm" / "model.safetensors").stat().st_mtime
    make_tiny_models.main(["--output_dir", str(out), "--text", str(text)])
    assert (out / "llm" / "model.safetensors").stat().st_mtime == mtime
