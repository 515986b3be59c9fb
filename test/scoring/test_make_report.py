"""Stage 13 report: RESULTS.md tables parse back to the scored numbers; plots are written."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import espnet_speechllm
from espnet_speechllm.bin import make_report
from espnet_speechllm.report.plots import plot_train_curves
from espnet_speechllm.report.results_report import exp_section, training_command
from espnet_speechllm.report.train_log import log_launches, log_span_seconds, parse_train_log

ENV = {**os.environ, "PYTHONPATH": str(Path(espnet_speechllm.__file__).resolve().parents[1])}
DECODE = "decode_beam2_lp1.0"

# Excerpt in the format of ESPnet's Trainer (espnet2/train/reporter.py Reporter.log_message, logged through
# abs_task's "[host] asctime (module:lineno) LEVEL: message" format). Epoch 2 is logged twice, as after a
# resume; the second summary is the one that counts. Times are humanfriendly spans with commas inside.
TRAIN_LOG = """\
[node1] 2026-11-20 10:00:00,001 (asr_llm:120) INFO: Vocabulary size: 32000
[node1] 2026-11-20 10:00:05,120 (trainer:291) INFO: 1/3epoch started
[node1] 2026-11-20 10:01:12,345 (trainer:762) INFO: 1epoch:train:1-50batch: iter_time=1.234e-04, \
forward_time=0.123, loss_ce=4.120, loss_match=0.601, loss=4.180, acc=0.101, backward_time=0.101, \
grad_norm=12.301, clip=100.000, loss_scale=1.000, optim_step_time=0.010, optim0_lr0=1.000e-05, train_time=0.456
[node1] 2026-11-20 10:05:00,000 (trainer:338) INFO: 1epoch results: [train] iter_time=1.100e-04, \
forward_time=0.118, loss_ce=3.802, loss_match=0.512, loss=3.853, acc=0.214, backward_time=0.097, \
grad_norm=10.876, clip=100.000, loss_scale=1.000, optim_step_time=0.010, optim0_lr0=2.500e-05, \
train_time=0.450, time=4 minutes and 48.12 seconds, total_count=640, gpu_max_cached_mem_GB=21.453, \
[valid] loss_ce=3.501, loss_match=0.498, loss=3.551, acc=0.262, time=11.3 seconds, total_count=80, \
gpu_max_cached_mem_GB=21.453, [att_plot] time=2.05 seconds, total_count=0
[node1] 2026-11-20 10:05:00,500 (trainer:404) INFO: The best model has been updated: valid.acc
[node1] 2026-11-20 10:09:30,000 (trainer:338) INFO: 2epoch results: [train] iter_time=1.000e-04, \
loss_ce=2.950, loss_match=0.400, loss=2.990, acc=0.351, optim0_lr0=5.000e-05, \
train_time=0.440, time=4 minutes and 30 seconds, total_count=1280, [valid] loss_ce=2.900, loss=2.950, \
acc=0.370, time=10.9 seconds, total_count=160
[node1] 2026-11-20 11:00:00,000 (trainer:291) INFO: 2/3epoch started
[node1] 2026-11-20 12:02:03,450 (trainer:338) INFO: 2epoch results: [train] iter_time=1.000e-04, \
loss_ce=2.701, loss_match=0.352, loss=2.736, acc=0.402, optim0_lr0=5.000e-05, \
train_time=0.440, time=1 hour, 2 minutes and 3.45 seconds, total_count=1280, \
gpu_max_cached_mem_GB=21.500, [valid] loss_ce=2.650, loss_match=0.340, loss=2.684, acc=0.415, \
time=10.9 seconds, total_count=160, gpu_max_cached_mem_GB=21.500
[node1] 2026-11-20 12:06:00,000 (trainer:338) INFO: 3epoch results: [train] iter_time=9.800e-05, \
loss_ce=2.204, loss_match=0.301, loss=2.234, acc=0.503, optim0_lr0=1.000e-04, train_time=0.430, \
time=3 minutes and 56.5 seconds, total_count=1920, [valid] loss_ce=2.301, loss_match=0.310, \
loss=2.332, acc=0.488, time=10.8 seconds, total_count=240
[node1] 2026-11-20 12:06:01,000 (trainer:458) INFO: The training was finished at 3 epochs
"""

SPEECH_REFS = {"s1-a": "THE CAT SAT ON THE MAT", "s1-b": "HELLO THERE WORLD", "s2-c": "GOOD MORNING"}
SPEECH_HYPS = {"s1-a": "the cat sat on a mat", "s1-b": "hello world", "s2-c": "good morning to you"}
NONSPEECH_REFS = {"n-1": "", "n-2": "", "n-3": ""}
NONSPEECH_HYPS = {"n-1": "", "n-2": "uh huh", "n-3": "thank you for watching"}
PARAMS = {
    "total": 7_000_000,
    "trainable": 350_000,
    "modules": {
        "encoder": {"total": 1_000_000, "trainable": 100_000},
        "adapter": {"total": 50_000, "trainable": 50_000},
        "llm": {"total": 5_950_000, "trainable": 200_000},
    },
}


@pytest.fixture
def fake_exp(tmp_path, score_set):
    """exp/asr_tiny scored by score_wer on a speech set and a non-speech set, with train.log and params."""
    exp = tmp_path / "exp" / "asr_tiny"
    for name, refs, hyps, durs in (
        ("test_speech", SPEECH_REFS, SPEECH_HYPS, None),
        ("nonspeech_test", NONSPEECH_REFS, NONSPEECH_HYPS, {"n-1": 1.5, "n-2": 2.5, "n-3": 2.0}),
    ):
        work = tmp_path / "work" / name
        res = score_set(work, refs, hyps, utt2dur=durs)
        dest = exp / DECODE / name / "score_wer"
        dest.mkdir(parents=True)
        for f in res["out"].iterdir():
            (dest / f.name).write_bytes(f.read_bytes())
    (exp / "train.log").write_text(TRAIN_LOG)
    (exp / "param_report.json").write_text(json.dumps(PARAMS))
    (exp / "run.sh").write_text("./run.sh --stage 9 --stop_stage 13 --asr_config conf/tiny.yaml\n")
    return exp


def _table(md: str, heading: str):
    """Rows of the markdown table under ``heading`` as lists of cells (header first)."""
    lines = md.splitlines()
    start = lines.index(heading)
    rows = []
    for line in lines[start + 1:]:
        if not line.strip() and rows:
            break
        if line.startswith("|") and not line.startswith("|---"):
            rows.append(line.strip("|").split("|"))
    return rows


def test_results_md_round_trip_and_plots(tmp_path, fake_exp):
    out = tmp_path / "RESULTS.md"
    make_report.main(["--exp_dir", str(tmp_path / "exp" / "asr_*"), "--out", str(out),
                      "--config_file", "conf/tiny.yaml"])
    md = out.read_text()

    assert "## Environments" in md and "- python version: `" in md and "- torch version: `" in md
    assert "- git hash: `" in md and os.uname().nodename not in md  # hostname-free
    assert "- config: `conf/tiny.yaml`" in md
    assert "./run.sh --stage 9 --stop_stage 13" in md

    rows = _table(md, f"### WER: {DECODE}")
    assert rows[0] == ["dataset", "Snt", "Wrd", "Corr", "Sub", "Del", "Ins", "Err", "S.Err"]
    by_set = {r[0]: r[1:] for r in rows[1:]}
    assert sorted(by_set) == ["nonspeech_test", "test_speech"]
    for name, cells in by_set.items():
        result = json.loads((fake_exp / DECODE / name / "score_wer" / "result.json").read_text())
        assert int(cells[0]) == result["counts"]["Snt"] and int(cells[1]) == result["counts"]["Wrd"]
        for cell, key in zip(cells[2:], ("Corr", "Sub", "Del", "Ins", "Err", "S.Err")):
            expected = result["percent"][key]
            assert (cell == "-") if expected is None else float(cell) == pytest.approx(expected)
    # Reasoned by hand: 11 words, 1 sub + 1 del + 2 ins -> Err 36.4 %, every sentence wrong.
    assert by_set["test_speech"] == ["3", "11", "81.8", "9.1", "9.1", "18.2", "36.4", "100.0"]
    assert by_set["nonspeech_test"] == ["3", "0", "-", "-", "-", "-", "-", "66.7"]

    hallu = _table(md, f"### Insertions on non-speech sets: {DECODE}")
    assert [r[0] for r in hallu[1:]] == ["nonspeech_test"]
    # 6 inserted words, 24 characters, 6 s of audio = 0.1 min.
    assert hallu[1][1:] == ["3", "66.7", "6", "24", "0.10", "60.00", "240.00"]

    params = _table(md, "### Parameters")
    assert params[-1][0] == "**all**" and params[-1][1].startswith("7,000,000")
    assert params[-1][3] == "5.00"

    # Best valid acc 0.488 at epoch 3; wall time from the first to the last timestamp.
    assert "- best valid acc: 0.4880 (epoch 3)" in md
    assert "- train.log wall time: 2:06:01" in md

    images = fake_exp / "images"
    for png in (f"{DECODE}_error_breakdown.png", f"{DECODE}_hallucination.png", "train_curves.png"):
        data = (images / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000, png
        # Linked relative to RESULTS.md.
        assert f"](exp/asr_tiny/images/{png})" in md


def test_parse_train_log_handwritten(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(TRAIN_LOG)
    epochs = parse_train_log(log)
    assert sorted(epochs) == [1, 2, 3]
    assert sorted(epochs[1]) == ["att_plot", "train", "valid"]
    assert epochs[1]["train"]["loss"] == 3.853 and epochs[1]["valid"]["acc"] == 0.262
    assert epochs[1]["train"]["iter_time"] == pytest.approx(1.1e-4)
    assert epochs[1]["train"]["total_count"] == 640  # after the "4 minutes and 48.12 seconds" span
    assert "time" not in epochs[1]["train"]  # a duration in words, not a number
    # The resumed epoch 2 (logged last) wins, and "1 hour, 2 minutes and ..." does not break parsing.
    assert epochs[2]["train"]["loss"] == 2.736 and epochs[2]["valid"]["acc"] == 0.415
    assert epochs[2]["train"]["gpu_max_cached_mem_GB"] == 21.5
    assert epochs[3]["valid"]["loss_match"] == 0.31
    assert log_span_seconds(log) == 2 * 3600 + 6 * 60 + 1
    keys = plot_train_curves(epochs, tmp_path / "curves.png")
    assert keys == ["loss", "acc", "loss_ce", "loss_match"]
    assert (tmp_path / "curves.png").stat().st_size > 2000


def test_parse_train_log_from_espnet_reporter(tmp_path):
    """Lines produced by ESPnet's own Reporter parse back to the registered values."""
    reporter_mod = pytest.importorskip("espnet2.train.reporter")
    reporter = reporter_mod.Reporter()
    lines = []
    for epoch in (1, 2):
        reporter.set_epoch(epoch)
        with reporter.observe("train") as sub:
            for _ in range(2):
                sub.register({"loss": 3.0 / epoch, "loss_ce": 2.5 / epoch, "acc": 0.2 * epoch}, 4)
                sub.next()
        with reporter.observe("valid") as sub:
            sub.register({"loss": 3.5 / epoch, "acc": 0.15 * epoch}, 4)
            sub.next()
        lines.append(f"[host] 2026-11-20 10:0{epoch}:00,000 (trainer:338) INFO: {reporter.log_message()}")
    log = tmp_path / "train.log"
    log.write_text("\n".join(lines) + "\n")
    epochs = parse_train_log(log)
    assert epochs[2]["train"]["loss"] == pytest.approx(1.5, abs=1e-3)
    assert epochs[2]["train"]["acc"] == pytest.approx(0.4, abs=1e-3)
    assert epochs[1]["valid"]["loss"] == pytest.approx(3.5, abs=1e-3)
    assert epochs[2]["valid"]["acc"] == pytest.approx(0.3, abs=1e-3)


def test_exp_dir_errors_and_help(tmp_path):
    with pytest.raises(ValueError, match="no such directory"):
        make_report.main(["--exp_dir", str(tmp_path / "nope_*"), "--out", str(tmp_path / "R.md")])
    # An exp dir without scores still gives a report saying so.
    (tmp_path / "exp" / "empty").mkdir(parents=True)
    make_report.main(["--exp_dir", str(tmp_path / "exp" / "empty"), "--out", str(tmp_path / "R.md")])
    assert "No scored decoding yet" in (tmp_path / "R.md").read_text()

    proc = subprocess.run(
        [sys.executable, "-m", "espnet_speechllm.bin.make_report", "--help"], capture_output=True, text=True,
        env=ENV,
    )
    assert proc.returncode == 0
    assert re.search(r"--exp_dir EXP_DIR", proc.stdout) and "--out" in proc.stdout


def test_wall_time_sums_the_launches_of_an_appended_train_log(tmp_path):
    """Stage 9 appends every launch to train.log: a killed launch counts its timestamp span, a finished one the
    elapsed time of its job backend; epochs of all launches are read."""
    log = tmp_path / "train.log"
    log.write_text(
        "# ===== stage 9 launch at 2026-01-01 09:00:00: exp/x/run.sh =====\n"
        "# python -m espnet_speechllm.bin.speechllm_train ...\n# Started at 2026-01-01 10:00:00 on host\n"
        "[h] 2026-01-01 10:00:30,1 (trainer:1) INFO: 1epoch results: [train] loss=2.0, [valid] acc=0.3\n"
        "[h] 2026-01-01 10:01:00,1 (trainer:1) INFO: 2/2epoch started\n"  # killed here: 60 s
        "# ===== stage 9 launch at 2026-01-02 09:00:00: exp/x/run.sh =====\n"
        "# python -m espnet_speechllm.bin.speechllm_train ...\n# Started at 2026-01-02 10:00:00 on host\n"
        "[h] 2026-01-02 10:00:40,1 (trainer:1) INFO: 2epoch results: [train] loss=1.0, [valid] acc=0.5\n"
        "# Ended (code 0) at Fri Jan  2 10:00:45 UTC 2026, elapsed time 45 seconds\n")
    assert log_launches(log) == [60.0, 45.0]
    assert sorted(parse_train_log(log)) == [1, 2]
    exp = tmp_path / "exp" / "x"
    exp.mkdir(parents=True)
    (exp / "train.log").write_text(log.read_text())
    md = "\n".join(exp_section(exp, tmp_path, None))
    assert "- training: 2 epochs logged (last: 2)" in md and "- train.log wall time: 0:01:45 over 2 launches" in md


def test_stage6_drops_are_noted_per_set(tmp_path, fake_exp):
    dump = tmp_path / "dump" / "raw"
    (dump / "test_speech").mkdir(parents=True)
    (dump / "test_speech" / "dropped_utts.txt").write_text("a too_short x.wav\nb empty_audio y.wav\n")
    (dump / "nonspeech_test").mkdir(parents=True)
    (dump / "nonspeech_test" / "dropped_utts.txt").write_text("")
    out = tmp_path / "RESULTS.md"
    make_report.main(["--exp_dir", str(fake_exp), "--out", str(out), "--dump_dir", str(dump)])
    md = out.read_text()
    assert ("- test_speech: 2 utterance(s) dropped at stage 6 and not scored (empty_audio 1, too_short 1); "
            "list: `dump/raw/test_speech/dropped_utts.txt`") in md
    assert "- nonspeech_test:" not in md


def test_command_is_the_users_stage9_command_relative_to_the_recipe():
    resume = ("#!/usr/bin/env bash\n# Resumes the training of this experiment (stage 9 of asr_llm.sh).\n"
              "cd /abs/egs2/synth_llm/asr1 || exit 1\nexport ASR_LLM_RESUME_SCRIPT=/abs/exp/asr_llm_train/run.sh\n"
              "exec ./asr_llm.sh --ngpu 0 --train_config conf/train.yaml --stage 9 --stop_stage 9 \"$@\"\n")
    assert training_command(resume) == \
        "./asr_llm.sh --ngpu 0 --train_config conf/train.yaml --stage 9 --stop_stage 9"
