"""Stage 9 killed in epoch 2 and resumed, twice, through the exp dir's run.sh: real training of the tiny models
through asr_llm.sh. The run.sh stays one command and is never rewritten under itself, train.log keeps every
launch, the final weights equal those of an uninterrupted run, and the report lists every epoch; the report of
a second experiment does not overwrite the first one's RESULTS.md."""
import os
import shutil
import signal
import subprocess
import sys
import time

import soundfile as sf
import torch

from .conftest import env, read_kv, run, stub_recipe, write_data_dir


def _recipe(tmp_path, tiny_models, speech_corpus, make_train_yaml):
    r = stub_recipe(tmp_path)
    make_train_yaml(tiny_models, r / "conf" / "train_tiny.yaml", max_epoch=2, keep_nbest_models=1)
    (r / "conf" / "decode.yaml").write_text("beam_size: 1\n")
    shutil.copytree(speech_corpus, r / "dump" / "raw" / "train_final")
    utts = sorted(read_kv(f"{speech_corpus}/wav.scp").items())
    write_data_dir(str(r / "dump" / "raw" / "dev"), [(u, u, w, "HI") for u, w in utts[:4]])
    for mode, data in (("train", r / "dump" / "raw" / "train_final"), ("valid", r / "dump" / "raw" / "dev")):
        stats = r / "exp" / "stats_train_tiny" / mode  # what stage 8 writes (it has tests of its own)
        stats.mkdir(parents=True)
        wavs, texts = read_kv(f"{data}/wav.scp"), read_kv(f"{data}/text")
        (stats / "speech_shape").write_text("".join(f"{u} {sf.info(w).frames}\n" for u, w in wavs.items()))
        (stats / "text_shape").write_text("".join(f"{u} {len(t.split()) + 2}\n" for u, t in texts.items()))
    return r


def _args(*extra):
    return ["./asr_llm.sh", "--python", sys.executable, "--nj", "1", "--ngpu", "0", "--train_set", "train",
            "--valid_set", "dev", "--test_sets", "test", "--train_config", "conf/train_tiny.yaml",
            "--inference_config", "conf/decode.yaml", *extra]


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_kill_in_epoch_2_then_resume_twice(tmp_path, tiny_models, speech_corpus, make_train_yaml):
    r = _recipe(tmp_path, tiny_models, speech_corpus, make_train_yaml)
    exp = r / "exp" / "asr_llm_train_tiny"
    proc = subprocess.Popen(_args("--stage", "9", "--stop_stage", "13"), cwd=str(r), env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while "2/2epoch started" not in (exp / "train.log").read_text() if (exp / "train.log").exists() else True:
        assert proc.poll() is None and time.time() < deadline, "training ended before epoch 2 started"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (exp / "1epoch.pth").exists() and not (exp / "2epoch.pth").exists(), "not killed inside epoch 2"
    script = (exp / "run.sh").read_text()
    assert script.count("--stage 9 --stop_stage 9") == 1 and "--stop_stage 13" not in script

    for _ in range(2):  # the second resume finds the training done
        p = run([str(exp / "run.sh")], cwd=str(tmp_path))
        assert "Successfully finished" in p.stderr
        assert (exp / "run.sh").read_text() == script, "run.sh changed"
    log = (exp / "train.log").read_text()
    assert log.count("# ===== stage 9 launch at ") == 3 and log.count("# Started at ") == 3
    assert "1epoch results" in log and "2epoch results" in log  # the first launch's epoch is kept

    # an uninterrupted run of the same experiment, under another tag
    run(_args("--stage", "9", "--stop_stage", "9", "--asr_tag", "straight", "--asr_stats_dir",
              "exp/stats_train_tiny"), cwd=str(r))
    resumed, straight = _weights(exp / "2epoch.pth"), _weights(r / "exp" / "asr_llm_straight" / "2epoch.pth")
    assert resumed.keys() == straight.keys() and resumed
    for k in resumed:
        assert torch.equal(resumed[k], straight[k]), k

    # the report reads every launch; a report of another experiment goes next to its exp dir
    run(_args("--stage", "13"), cwd=str(r))
    md = (r / "RESULTS.md").read_text()
    assert "- training: 2 epochs logged (last: 2)" in md and "over 3 launches (resumed)" in md
    p = run(_args("--stage", "13", "--asr_tag", "straight"), cwd=str(r))
    assert (r / "RESULTS.md").read_text() == md
    assert "- training: 2 epochs logged" in (r / "exp" / "asr_llm_straight" / "RESULTS.md").read_text()
    assert "RESULTS.md reports another experiment" in p.stderr
