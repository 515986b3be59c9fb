"""Dumped frozen-encoder outputs: the dump equals the encoder, a model on them trains through ESPnet to the same
loss as with the encoder in the loop, and decoding swaps the encoder back in."""
import argparse
import os
import shutil
import subprocess
import sys

import kaldiio
import pytest
import torch
import yaml

from espnet_speechllm.bin import dump_encoder_feats
from espnet_speechllm.data.audio import load_audio
from espnet_speechllm.data.kaldi_dir import read_kaldi_file
from espnet_speechllm.encoder.dump import build_frozen_encoder
from espnet_speechllm.encoder.hf_speech_encoder import HFSpeechEncoder
from espnet_speechllm.encoder.precomputed import PrecomputedEncoder, dump_dir_name, restore_source_encoder
from espnet_speechllm.tasks.speechllm import SpeechLLMTask


@pytest.fixture(scope="module")
def dumped(tiny_models, speech_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("feats")
    data = root / "data"
    shutil.copytree(speech_corpus, data)
    wavs = read_kaldi_file(f"{data}/wav.scp")
    (data / "utt2num_samples").write_text("".join(f"{u} {len(load_audio(u, e))}\n" for u, e in wavs.items()))
    config = root / "frozen.yaml"
    config.write_text(yaml.safe_dump({"encoder": "hubert",
                                      "encoder_conf": {"model_dir": f"{tiny_models}/encoder", "finetune": "frozen"}}))
    # 5 s batches: several padded batches over the 12 utterances.
    dump_encoder_feats.main(["--train_config", str(config), "--data_dir", str(data), "--out_dir", str(root / "feats"),
                             "--dtype", "float32", "--batch_seconds", "5"])
    return dict(root=root, data=str(data), feats=str(root / "feats"), config=str(config), wavs=wavs)


def test_dump_equals_encoder_run_alone(dumped, tiny_models):
    encoder = build_frozen_encoder(dumped["config"])
    feats = dict(kaldiio.load_scp(f"{dumped['feats']}/feats.scp"))
    assert list(feats) == sorted(dumped["wavs"])  # utterance order, like every Kaldi file of the dir
    frames = dict(line.split() for line in open(f"{dumped['feats']}/utt2num_frames"))
    with torch.no_grad():
        for utt, entry in dumped["wavs"].items():
            wav = torch.from_numpy(load_audio(utt, entry))[None]
            hidden, _ = encoder(wav, torch.tensor([wav.size(1)]))
            assert feats[utt].shape == tuple(hidden[0].shape) and int(frames[utt]) == hidden.size(1)
            assert torch.allclose(torch.from_numpy(feats[utt]), hidden[0], atol=1e-4), utt
    assert open(f"{dumped['feats']}/text").read() == open(f"{dumped['data']}/text").read()


def test_rerun_skips_and_never_overwrites(dumped, caplog):
    args = ["--train_config", dumped["config"], "--data_dir", dumped["data"], "--out_dir", dumped["feats"],
            "--dtype", "float32"]
    mtime = os.path.getmtime(f"{dumped['feats']}/feats.ark")
    dump_encoder_feats.main(args)
    assert os.path.getmtime(f"{dumped['feats']}/feats.ark") == mtime
    with pytest.raises(Exception, match="other settings"):
        dump_encoder_feats.main(args[:-1] + ["float16"])


def _precomputed_args(make_model_args, tiny_models):
    args = make_model_args(tiny_models, "frozen", "lora", matching_weight=0.5)
    return args, argparse.Namespace(**{**vars(args), "encoder": "precomputed",
                                       "encoder_conf": {"source": "hubert", "source_conf": args.encoder_conf}})


def test_same_loss_as_frozen_encoder_and_decoding_swap(dumped, make_model_args, tiny_models):
    args, pre_args = _precomputed_args(make_model_args, tiny_models)
    torch.manual_seed(0)
    with_encoder = SpeechLLMTask.build_model(args).eval()
    on_feats = SpeechLLMTask.build_model(pre_args).eval()
    on_feats.load_state_dict(with_encoder.state_dict())  # same adapter / LoRA / matching weights
    feats = dict(kaldiio.load_scp(f"{dumped['feats']}/feats.scp"))
    texts = dict(line.rstrip("\n").split(" ", 1) for line in open(f"{dumped['data']}/text"))
    utts = sorted(feats)[:4]
    tok = with_encoder.llm.tokenizer
    ids = [torch.tensor(tok(texts[u], add_special_tokens=False).input_ids) for u in utts]
    text = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=-1)
    text_lengths = torch.tensor([len(i) for i in ids])
    wavs = [torch.from_numpy(load_audio(u, dumped["wavs"][u])) for u in utts]
    speech = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    speech_lengths = torch.tensor([len(w) for w in wavs])
    h = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(feats[u]) for u in utts], batch_first=True)
    h_lengths = torch.tensor([feats[u].shape[0] for u in utts])
    with torch.no_grad():
        _, ref, _ = with_encoder(speech, speech_lengths, text, text_lengths)
        _, got, _ = on_feats(h, h_lengths, text, text_lengths)
        for key in ("loss", "loss_ce", "loss_match"):
            assert abs(float(ref[key]) - float(got[key])) < 1e-4, (key, ref[key], got[key])
        with pytest.raises(ValueError, match="precomputed expects"):
            on_feats(speech, speech_lengths, text, text_lengths)  # a waveform batch
        restore_source_encoder(on_feats)  # what the inference and plotting tools do
        a, a_len = with_encoder.encode_speech(speech, speech_lengths)
        b, b_len = on_feats.encode_speech(speech, speech_lengths)
        assert torch.equal(a_len, b_len) and torch.allclose(a, b, atol=1e-5)


def test_only_frozen_encoders(tiny_models, tmp_path):
    with pytest.raises(ValueError, match="only a frozen encoder"):
        PrecomputedEncoder("hubert", {"model_dir": f"{tiny_models}/encoder", "finetune": "lora"})
    config = tmp_path / "lora.yaml"
    config.write_text(yaml.safe_dump({"encoder": "hubert", "encoder_conf": {"model_dir": f"{tiny_models}/encoder",
                                                                            "finetune": "lora"}}))
    with pytest.raises(ValueError, match="only a frozen encoder"):
        build_frozen_encoder(str(config))


@pytest.mark.parametrize("kind", ["encoder_outputs", "frontend_outputs"])
def test_espnet_training_on_dumped_feats(kind, request, dumped, tiny_models, tmp_path, make_train_yaml):
    if kind == "encoder_outputs":
        source_conf = dict(model_dir=f"{tiny_models}/encoder", finetune="frozen")
        config = make_train_yaml(tiny_models, tmp_path / "train.yaml", encoder="precomputed",
                                 encoder_conf=dict(source="hubert", source_conf=source_conf), max_epoch=1,
                                 keep_nbest_models=1)
        feats, width = dumped["feats"], 128
    else:  # the LoRA encoder's transformer trains on its dumped CNN outputs
        config = make_train_yaml(tiny_models, tmp_path / "train.yaml", encoder="hubert", max_epoch=1,
                                 encoder_conf=dict(model_dir=f"{tiny_models}/encoder", finetune="lora", lora_conf=LORA,
                                                   precomputed_frontend=True), keep_nbest_models=1)
        feats, width = request.getfixturevalue("frontend_dumped")["feats"], 64
    data = dumped["data"]
    data_args = ["--train_data_path_and_name_and_type", f"{feats}/feats.scp,speech,kaldi_ark",
                 "--train_data_path_and_name_and_type", f"{data}/text,text,transcript",
                 "--valid_data_path_and_name_and_type", f"{feats}/feats.scp,speech,kaldi_ark",
                 "--valid_data_path_and_name_and_type", f"{data}/text,text,transcript"]

    def train(*args):
        proc = subprocess.run([sys.executable, "-m", "espnet_speechllm.bin.speechllm_train", "--config", str(config),
                               *data_args, *map(str, args)], cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]

    train("--collect_stats", "true", "--train_shape_file", f"{feats}/feats.scp",
          "--valid_shape_file", f"{feats}/feats.scp", "--output_dir", tmp_path / "stats")
    shape = (tmp_path / "stats/train/speech_shape").read_text().split("\n")[0].split()
    assert shape[1].endswith(f",{width}")  # (frames, encoder or CNN width)
    stats = tmp_path / "stats"
    train("--train_shape_file", stats / "train/speech_shape", "--train_shape_file", stats / "train/text_shape",
          "--valid_shape_file", stats / "valid/speech_shape", "--valid_shape_file", stats / "valid/text_shape",
          "--output_dir", tmp_path / "exp")
    assert (tmp_path / "exp" / "1epoch.pth").is_file()


# ----------------------------------------------------------------- the waveform CNN's outputs dumped (LoRA encoder)
LORA = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}


@pytest.fixture(scope="module")
def frontend_dumped(dumped, tiny_models):
    config = dumped["root"] / "frontend.yaml"
    config.write_text(yaml.safe_dump({"encoder": "hubert", "encoder_conf": {
        "model_dir": f"{tiny_models}/encoder", "finetune": "lora", "lora_conf": LORA, "precomputed_frontend": True}}))
    out = dumped["root"] / "frontend"
    dump_encoder_feats.main(["--train_config", str(config), "--data_dir", dumped["data"], "--out_dir", str(out),
                             "--dtype", "float32", "--batch_seconds", "5"])
    return dict(config=str(config), feats=str(out))


def test_lora_encoder_on_dumped_cnn_outputs_equals_it_on_audio(frontend_dumped, dumped, tiny_models):
    """The transformer (with LoRA) on dumped CNN outputs computes what the encoder computes from audio, and its
    LoRA weights get the same gradients; decoding's audio_input() switches back to audio."""
    torch.manual_seed(0)
    encoder = HFSpeechEncoder(model_dir=f"{tiny_models}/encoder", finetune="lora", lora_conf=LORA,
                              precomputed_frontend=True).eval()
    lora = {n: p for n, p in encoder.named_parameters() if p.requires_grad}
    with torch.no_grad():  # LoRA starts as the identity (B = 0): make it change the outputs
        for n, p in lora.items():
            p.normal_(std=0.1)
    feats = dict(kaldiio.load_scp(f"{frontend_dumped['feats']}/feats.scp"))
    utts = sorted(feats)[:3]
    assert all(feats[u].shape[1] == encoder.frontend_size() for u in utts)
    x = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(feats[u]) for u in utts], batch_first=True)
    hidden, lengths = encoder(x, torch.tensor([feats[u].shape[0] for u in utts]))
    loss = sum(hidden[i, : lengths[i]].pow(2).mean() for i in range(len(utts)))
    grads = torch.autograd.grad(loss, list(lora.values()))
    wavs = [torch.from_numpy(load_audio(u, dumped["wavs"][u])) for u in utts]
    on_audio = encoder.audio_input()
    ref, ref_lengths = on_audio(torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True),
                                torch.tensor([len(w) for w in wavs]))
    assert torch.equal(lengths, ref_lengths)
    for i in range(len(utts)):
        assert torch.allclose(hidden[i, : lengths[i]], ref[i, : lengths[i]], atol=1e-4), utts[i]
    ref_loss = sum(ref[i, : lengths[i]].pow(2).mean() for i in range(len(utts)))
    for got, want in zip(grads, torch.autograd.grad(ref_loss, list(lora.values()))):
        assert torch.allclose(got, want, atol=1e-4, rtol=1e-3)


def test_frontend_dump_is_shared_and_marked_with_its_inputs(frontend_dumped, dumped, tmp_path):
    """A config that differs only in fine-tuning (another LoRA rank) reuses the dump, and gets the same dump dir;
    one whose CNN outputs differ (no waveform normalization) is refused instead."""
    args = ["--data_dir", dumped["data"], "--out_dir", frontend_dumped["feats"], "--dtype", "float32"]
    mtime = os.path.getmtime(f"{frontend_dumped['feats']}/feats.ark")
    conf = yaml.safe_load(open(frontend_dumped["config"]))
    conf["encoder_conf"]["lora_conf"] = {**LORA, "r": 8}
    other_rank = tmp_path / "other_rank.yaml"
    other_rank.write_text(yaml.safe_dump(conf))
    dump_encoder_feats.main(["--train_config", str(other_rank), *args])
    assert os.path.getmtime(f"{frontend_dumped['feats']}/feats.ark") == mtime
    assert (dump_dir_name(str(other_rank), conf["encoder"], conf["encoder_conf"])
            == dump_dir_name(frontend_dumped["config"], conf["encoder"], {**conf["encoder_conf"], "lora_conf": LORA})
            != dump_dir_name(str(other_rank), conf["encoder"], {**conf["encoder_conf"], "normalize_waveform": False}))
    conf["encoder_conf"]["normalize_waveform"] = False
    unnormalized = tmp_path / "unnormalized.yaml"
    unnormalized.write_text(yaml.safe_dump(conf))
    with pytest.raises(Exception, match="other settings"):
        dump_encoder_feats.main(["--train_config", str(unnormalized), *args])


def test_frontend_needs_a_frozen_layer_norm_cnn(tiny_models):
    with pytest.raises(ValueError, match="frozen waveform CNN"):
        HFSpeechEncoder(model_dir=f"{tiny_models}/encoder", finetune="full", freeze_feature_extractor=False,
                        precomputed_frontend=True)
    with pytest.raises(ValueError, match="layer-norm front-end"):
        HFSpeechEncoder(hf_config={"model_type": "wav2vec2", "hidden_size": 32, "num_hidden_layers": 1,
                                   "num_attention_heads": 2, "intermediate_size": 64, "conv_dim": [16] * 7,
                                   "feat_extract_norm": "group"}, precomputed_frontend=True)
    encoder = HFSpeechEncoder(model_dir=f"{tiny_models}/encoder", precomputed_frontend=True)
    with pytest.raises(ValueError, match="waveform-CNN outputs"):
        encoder(torch.zeros(1, 16000), torch.tensor([16000]))  # audio given to a features reader
