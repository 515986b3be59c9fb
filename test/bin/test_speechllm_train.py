"""ESPnet's Trainer end to end on espeak-ng speech: collect stats, 2 epochs, --resume continues."""
import os
import subprocess
import sys

import pytest


def run_train(*args, cwd):
    cmd = [sys.executable, "-m", "espnet_speechllm.bin.speechllm_train", *map(str, args)]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return proc


def data_args(data_dir):
    return ["--train_data_path_and_name_and_type", f"{data_dir}/wav.scp,speech,audio",
            "--train_data_path_and_name_and_type", f"{data_dir}/text,text,transcript",
            "--valid_data_path_and_name_and_type", f"{data_dir}/wav.scp,speech,audio",
            "--valid_data_path_and_name_and_type", f"{data_dir}/text,text,transcript"]


@pytest.fixture
def train_config(tiny_models, tmp_path, make_train_yaml):
    return make_train_yaml(tiny_models, tmp_path / "train.yaml")


def collect_stats(train_config, data_dir, tmp_path):
    stats = tmp_path / "stats"
    proc = run_train("--config", train_config, "--collect_stats", "true", *data_args(data_dir),
                     "--train_shape_file", f"{data_dir}/wav.scp", "--valid_shape_file", f"{data_dir}/wav.scp",
                     "--output_dir", stats, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return stats


def test_train_two_epochs_then_resume(speech_corpus, train_config, tmp_path):
    stats = collect_stats(train_config, speech_corpus, tmp_path)
    shapes = (stats / "train" / "text_shape").read_text().split("\n")
    assert len([s for s in shapes if s]) == 12
    exp = tmp_path / "exp"
    shape_args = ["--train_shape_file", stats / "train/speech_shape", "--train_shape_file", stats / "train/text_shape",
                  "--valid_shape_file", stats / "valid/speech_shape", "--valid_shape_file", stats / "valid/text_shape"]
    proc = run_train("--config", train_config, *data_args(speech_corpus), *shape_args, "--output_dir", exp,
                     "--resume", "true", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("1epoch.pth", "2epoch.pth", "checkpoint.pth", "valid.acc.best.pth", "config.yaml",
                 "param_report.json"):
        assert (exp / name).exists(), name
    assert "loss_match=" in proc.stderr and "acc=" in proc.stderr
    first_epoch_mtime = os.path.getmtime(exp / "1epoch.pth")

    proc = run_train("--config", train_config, *data_args(speech_corpus), *shape_args, "--output_dir", exp,
                     "--resume", "true", "--max_epoch", 3, "--keep_nbest_models", 3, cwd=tmp_path)  # keeps 1epoch.pth
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "The training was resumed" in proc.stderr
    assert "3/3epoch started" in proc.stderr and "1/3epoch started" not in proc.stderr
    assert (exp / "3epoch.pth").exists()
    assert os.path.getmtime(exp / "1epoch.pth") == first_epoch_mtime


@pytest.mark.parametrize("problem", ["missing", "corrupt", "8khz"])
def test_bad_audio_fails_naming_utterance_and_file(speech_corpus, train_config, tmp_path, problem, make_data_dir):
    wavs = dict(line.split(maxsplit=1) for line in open(f"{speech_corpus}/wav.scp").read().splitlines())
    texts = dict(line.split(maxsplit=1) for line in open(f"{speech_corpus}/text").read().splitlines())
    bad = tmp_path / "bad.wav"
    if problem == "corrupt":
        bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    elif problem == "8khz":
        subprocess.run(["sox", wavs["utt03"], "-r", "8000", str(bad)], check=True)
    wavs["utt03"] = str(bad)
    data = make_data_dir(str(tmp_path / "data"), [(u, wavs[u], texts[u]) for u in sorted(wavs)])
    proc = run_train("--config", train_config, "--collect_stats", "true", *data_args(data),
                     "--train_shape_file", f"{data}/wav.scp", "--valid_shape_file", f"{data}/wav.scp",
                     "--output_dir", tmp_path / "stats", cwd=tmp_path)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    # The last line is the error a user can act on (UserError, a ValueError): the utterance and the file.
    assert last.startswith("espnet_speechllm.utils.cli.UserError: utterance 'utt03'") and str(bad) in last, last
    if problem == "8khz":
        assert "8000 Hz, expected 16000 Hz" in last
