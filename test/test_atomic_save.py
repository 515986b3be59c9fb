"""Checkpoint saves in training are atomic and name a full disk: the write really fails with ENOSPC (the partial
file is a link to /dev/full), the message says "no space left on device" with the path, and no partial
checkpoint is left where resuming or averaging would read it."""
import os

import pytest
import torch

from espnet_speechllm.tasks.speechllm import SpeechLLMTask
from espnet_speechllm.utils import atomic_save

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")


@needs_dev_full
def test_full_disk_names_the_path_and_keeps_the_old_checkpoint(tmp_path):
    ckpt = tmp_path / "checkpoint.pth"
    atomic_save.atomic_save({"epoch": 1, "w": torch.ones(3)}, ckpt)
    os.symlink("/dev/full", tmp_path / "checkpoint.pth.partial")  # the next write hits a full device
    with pytest.raises(OSError, match=f"no space left on device while saving {ckpt}") as err:
        atomic_save.atomic_save({"epoch": 2, "w": torch.zeros(100_000)}, ckpt)
    assert "partial file was removed" in str(err.value)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pth"]  # no partial file where resume/averaging look
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1  # the last complete checkpoint, intact


def test_training_processes_save_atomically(monkeypatch, tmp_path):
    original = torch.save
    monkeypatch.setattr(torch, "save", original)  # restored after the test
    monkeypatch.setattr("espnet2.tasks.abs_task.AbsTask.main_worker", classmethod(lambda cls, args: None))
    SpeechLLMTask.main_worker(None)
    assert torch.save is not original and torch.save._unwrapped_save is original
    torch.save({"a": 1}, tmp_path / "x.pth")  # file names and file objects both still work
    assert torch.load(tmp_path / "x.pth")["a"] == 1 and not (tmp_path / "x.pth.partial").exists()
