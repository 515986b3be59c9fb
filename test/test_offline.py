"""Offline by default: model building, training steps, decoding and scoring on the tiny models make no network
connection attempt (sockets are blocked), and a hub name instead of a local dir is refused before any request."""
import os
import socket
import subprocess

import numpy as np
import pytest
import soundfile
import torch
import yaml

from espnet_speechllm.bin import score_wer, speechllm_inference
from espnet_speechllm.encoder.precomputed import PrecomputedEncoder
from espnet_speechllm.scoring.sclite import find_sclite
from espnet_speechllm.tasks.speechllm import SpeechLLMTask
from espnet_speechllm.utils.local_dir import local_model_dir


@pytest.fixture
def no_network(monkeypatch):
    """Every socket creation or name lookup is recorded and fails."""
    attempts = []

    def refuse(name):
        def call(*args, **kwargs):
            attempts.append((name, args[:2]))
            raise OSError(f"network blocked by the test: {name}{args[:2]}")
        return call

    for name in ("socket", "create_connection", "getaddrinfo", "gethostbyname"):
        monkeypatch.setattr(socket, name, refuse(name))
    return attempts


def test_build_train_decode_score_without_network(no_network, tiny_models, make_model_args, tmp_path):
    args = make_model_args(tiny_models, "lora", "lora", matching_weight=0.5, use_preprocessor=True, text_case="keep")
    torch.manual_seed(0)
    model = SpeechLLMTask.build_model(args).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    speech, lengths = torch.randn(2, 8000), torch.tensor([8000, 6000])
    text, text_lengths = torch.tensor([[5, 6, 7], [8, 9, -1]]), torch.tensor([3, 2])
    for _ in range(2):
        loss, _, _ = model(speech, lengths, text, text_lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), exp / "valid.acc.ave.pth")
    data = tmp_path / "data"
    data.mkdir()
    t = np.arange(12000) / 16000
    for utt in ("utt1", "utt2"):
        soundfile.write(data / f"{utt}.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    (data / "wav.scp").write_text("".join(f"{u} {data}/{u}.wav\n" for u in ("utt1", "utt2")))
    (data / "text").write_text("utt1 HELLO\nutt2 WORLD\n")
    (tmp_path / "decode.yaml").write_text(yaml.safe_dump({"beam_size": 2, "max_new_tokens": 5}))
    speechllm_inference.main([
        "--config", str(tmp_path / "decode.yaml"), "--train_config", str(exp / "config.yaml"),
        "--model_file", str(exp / "valid.acc.ave.pth"), "--data_path_and_name_and_type",
        f"{data}/wav.scp,speech,audio", "--output_dir", str(tmp_path / "out"), "--num_workers", "0"])
    hyps = (tmp_path / "out" / "1best_recog" / "text").read_text().splitlines()
    assert [h.split()[0] for h in hyps] == ["utt1", "utt2"]
    if find_sclite() is not None:
        score_wer.main(["--ref_text", str(data / "text"), "--hyp_text", str(tmp_path / "out/1best_recog/text"),
                        "--out_dir", str(tmp_path / "score")])
        assert (tmp_path / "score" / "result.json").is_file()
    assert no_network == [], f"connection attempts: {no_network}"


def test_a_hub_name_is_refused_before_any_request(no_network, tiny_models, make_model_args):
    args = make_model_args(tiny_models, "frozen", "lora")
    args.llm_conf["model_dir"] = "lmsys/vicuna-7b-v1.5"
    with pytest.raises(ValueError, match=r"llm_conf.model_dir='lmsys/vicuna-7b-v1.5' is not a local directory"):
        SpeechLLMTask.build_model(args)
    args = make_model_args(tiny_models, "frozen", "lora")
    args.encoder_conf["model_dir"] = "facebook/hubert-large-ll60k"
    with pytest.raises(ValueError, match="encoder_conf.model_dir='facebook/hubert-large-ll60k' is not a local"):
        SpeechLLMTask.build_model(args)
    with pytest.raises(ValueError, match="source encoder's model_dir='facebook/hubert-large-ll60k' is not a local"):
        PrecomputedEncoder(source="hubert", source_conf={"model_dir": "facebook/hubert-large-ll60k"})
    with pytest.raises(ValueError, match="holds no config.json"):
        local_model_dir(tiny_models, "x")  # a dir, but not a model dir
    assert no_network == []


@pytest.mark.parametrize("recipe", ["synth_llm", "librispeech_llm"])
def test_path_sh_sets_offline_unless_the_user_did(recipe):
    cwd = os.path.join(os.path.dirname(__file__), "..", "egs2", recipe, "asr1")
    show = ". ./path.sh >/dev/null && echo \"${HF_HUB_OFFLINE} ${TRANSFORMERS_OFFLINE}\""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    out = subprocess.run(["bash", "-c", show], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1"]
    out = subprocess.run(["bash", "-c", show], cwd=cwd, env=dict(env, HF_HUB_OFFLINE="0"), capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["0", "1"]
