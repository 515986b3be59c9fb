"""Shared test fixtures: tiny real foundation models and a small espeak-ng speech corpus.

Everything is made here, offline: models with ``make_tiny_models`` (``save_pretrained`` dirs loaded back
through the same code as real checkpoints), speech with espeak-ng resampled to 16 kHz by sox.
"""
import argparse
import os
import shutil
import subprocess

import pytest
import yaml

SENTENCES = [
    "THE CAT SAT ON THE MAT",
    "JOHN WENT TO LONDON AT SEVEN",
    "MARY READS A GREEN BOOK",
    "FOUR RED APPLES FELL FROM THE TREE",
    "PETER PAINTED THE BLUE DOOR",
    "WE MET ANNA IN PARIS ON MONDAY",
    "THE OLD MAN WALKED HOME SLOWLY",
    "TWELVE BIRDS FLEW OVER THE RIVER",
    "SARAH BOUGHT TWO WARM COATS",
    "THE TRAIN LEAVES AT NINE",
    "DAVID PLAYED CHESS WITH HIS SISTER",
    "A SMALL DOG SLEPT BY THE FIRE",
]

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None, reason="espeak-ng and sox are required"
)


def synthesize(text: str, path: str, voice: str = "en-us", rate: int = 170) -> str:
    """espeak-ng speech as 16 kHz mono 16-bit wav at ``path``."""
    raw = path + ".22k.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", raw, text], check=True)
    subprocess.run(["sox", raw, "-r", "16000", "-c", "1", "-b", "16", path], check=True)
    os.remove(raw)
    return path


def write_data_dir(data_dir: str, utts):
    """utts: list of (utt_id, wav_entry, transcript) -> Kaldi wav.scp/text/utt2spk."""
    os.makedirs(data_dir, exist_ok=True)
    with open(f"{data_dir}/wav.scp", "w") as w, open(f"{data_dir}/text", "w") as t, \
            open(f"{data_dir}/utt2spk", "w") as s:
        for utt, entry, text in utts:
            w.write(f"{utt} {entry}\n")
            t.write(f"{utt} {text}\n".replace(" \n", "\n"))
            s.write(f"{utt} {utt}\n")
    return data_dir


@pytest.fixture(scope="session")
def speech_corpus(tmp_path_factory):
    """A dozen espeak-ng utterances as a Kaldi data dir; returns the dir path."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are required")
    root = tmp_path_factory.mktemp("corpus")
    utts = []
    for i, text in enumerate(SENTENCES):
        utt = f"utt{i:02d}"
        utts.append((utt, synthesize(text, str(root / f"{utt}.wav")), text))
    return write_data_dir(str(root / "data"), utts)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Dir with ``llm/`` and ``encoder/`` made by make_tiny_models (random weights)."""
    from espnet_speechllm.bin import make_tiny_models

    root = tmp_path_factory.mktemp("pretrained")
    text = root / "text.txt"
    text.write_text("\n".join(SENTENCES * 4) + "\n")
    make_tiny_models.main(["--output_dir", str(root), "--text", str(text)])
    return str(root)


def model_args(tiny_dir: str, encoder_finetune="frozen", llm_finetune="lora", adapter="conv1d_mlp",
               adapter_conf=None, matching_weight=0.0, **extra) -> argparse.Namespace:
    """Task args for a tiny model; LoRA confs sized for the tiny configs."""
    return argparse.Namespace(
        encoder="hubert",
        encoder_conf=dict(
            model_dir=f"{tiny_dir}/encoder", finetune=encoder_finetune,
            lora_conf=dict(r=4, alpha=8, target_modules=["q_proj", "v_proj"]),
        ),
        adapter=adapter,
        adapter_conf=adapter_conf if adapter_conf is not None else dict(downsample_rate=2, hidden_size=64),
        llm="hf_causal_lm",
        llm_conf=dict(
            model_dir=f"{tiny_dir}/llm", finetune=llm_finetune,
            lora_conf=dict(r=4, alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
        ),
        matching_loss_conf=dict(weight=matching_weight) if matching_weight else {},
        model_conf={},
        **extra,
    )


def train_yaml(tiny_dir: str, path, **overrides) -> str:
    """A speechllm_train YAML for the tiny models (LoRA both sides, matching loss 0.5); ``overrides``
    replace top-level keys whole."""
    lora = dict(r=4, alpha=8, target_modules=["q_proj", "v_proj"])
    conf = dict(
        encoder="hubert", encoder_conf=dict(model_dir=f"{tiny_dir}/encoder", finetune="lora", lora_conf=lora),
        adapter="conv1d_mlp", adapter_conf=dict(downsample_rate=2, hidden_size=64),
        llm="hf_causal_lm", llm_conf=dict(model_dir=f"{tiny_dir}/llm", finetune="lora", lora_conf=lora),
        matching_loss_conf=dict(weight=0.5),
        batch_type="sorted", batch_size=4, max_epoch=2, num_workers=0, optim="adamw", optim_conf=dict(lr=1e-3),
        best_model_criterion=[["valid", "acc", "max"]], keep_nbest_models=2, seed=0, ngpu=0,
    )
    conf.update(overrides)
    with open(path, "w") as f:
        yaml.safe_dump(conf, f)
    return str(path)


@pytest.fixture(scope="session")
def make_train_yaml():
    return train_yaml


@pytest.fixture(scope="session")
def make_model_args():
    return model_args


@pytest.fixture(scope="session")
def make_data_dir():
    return write_data_dir

