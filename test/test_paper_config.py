"""The paper's full-size system (HuBERT-large + vicuna-7b-v1.5 shape) built on the meta device from the
librispeech recipe's YAML: trainable LoRA counts must match the paper (Sec. 3: 0.65M encoder, 16M LLM)."""
import argparse
import os
import shutil

import torch
import yaml

from espnet_speechllm.tasks.speechllm import SpeechLLMTask
from espnet_speechllm.utils.reference_configs import HUBERT_LARGE_LL60K, vicuna_7b_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER_YAML = f"{REPO}/egs2/librispeech_llm/asr1/conf/train_hubert_conv1dmlp_vicuna_lora.yaml"


def build_paper_model_on_meta(tiny_models, tmp_path):
    with open(PAPER_YAML) as f:
        conf = yaml.safe_load(f)
    # A vicuna-7b-shaped dir: the real architecture config, a (small) tokenizer; random init on meta.
    llm_dir = tmp_path / "vicuna_shape"
    llm_dir.mkdir()
    for name in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy(f"{tiny_models}/llm/{name}", llm_dir / name)
    vicuna_7b_config().save_pretrained(llm_dir)
    encoder_conf = dict(conf["encoder_conf"], hf_config=dict(model_type="hubert", **HUBERT_LARGE_LL60K))
    encoder_conf.pop("model_dir")
    llm_conf = dict(conf["llm_conf"], model_dir=str(llm_dir), random_init=True)
    args = argparse.Namespace(
        encoder=conf["encoder"], encoder_conf=encoder_conf, adapter=conf["adapter"],
        adapter_conf=conf["adapter_conf"], llm=conf["llm"], llm_conf=llm_conf,
        matching_loss_conf=conf["matching_loss_conf"], model_conf={},
    )
    with torch.device("meta"):
        return SpeechLLMTask.build_model(args)


def test_paper_lora_counts(tiny_models, tmp_path):
    model = build_paper_model_on_meta(tiny_models, tmp_path)
    enc_lora = sum(p.numel() for n, p in model.encoder.named_parameters() if p.requires_grad)
    llm_lora = sum(p.numel() for n, p in model.llm.named_parameters() if p.requires_grad)
    # Paper: "0.65M" and "16M"; ours: 20 layers x 2 x 8 x (1024 + 1024), 32 x 4 x 16 x (4096 + 4096).
    assert enc_lora == 655_360
    assert llm_lora == 16_777_216
    assert all("lora_" in n for n, p in model.encoder.named_parameters() if p.requires_grad)
    assert all("lora_" in n for n, p in model.llm.named_parameters() if p.requires_grad)
    # The frozen foundation models are the published sizes (~316M HuBERT-large, ~6.74B Vicuna-7B).
    enc_total = sum(p.numel() for p in model.encoder.parameters()) - enc_lora
    llm_total = sum(p.numel() for p in model.llm.parameters()) - llm_lora
    assert 310e6 < enc_total < 320e6, enc_total
    assert 6.7e9 < llm_total < 6.8e9, llm_total
    # Only lower layers 0-3 of the encoder are left without LoRA.
    lora_layers = {int(n.split("layers.")[1].split(".")[0]) for n, _ in model.encoder.named_parameters() if "lora_A" in n}
    assert lora_layers == set(range(4, 24))
