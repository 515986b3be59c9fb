"""Checkpoints written whole or not at all, and a full disk named as such.

ESPnet's Trainer saves ``checkpoint.pth``, ``<N>epoch.pth`` and the averaged models with ``torch.save`` straight
to their final names. A full disk then leaves a truncated file where resuming and averaging read it, with a
message such as ``RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos ...``.
``install()`` (called in every training process by ``SpeechLLMTask.main_worker``) makes ``torch.save`` to a
path write ``<path>.partial`` first and rename it over ``<path>`` once complete; on failure the partial file is
removed, and a full disk is an ``OSError`` that says "no space left on device" and names the path.
"""
import errno
import os
import shutil

import torch

_WRITE_FAILURES = ("unexpected pos", "file write failed", "No space left", "write failed")


def _free_mb(path: str) -> float:
    try:
        return shutil.disk_usage(os.path.dirname(os.path.abspath(path)) or ".").free / 2**20
    except OSError:
        return float("nan")


def _no_space(e: BaseException) -> bool:
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return True
    return isinstance(e, RuntimeError) and any(s in str(e) for s in _WRITE_FAILURES)


def atomic_save(obj, f, *args, _save=None, **kwargs):
    """``torch.save`` that renames a complete ``<f>.partial`` over ``f``; file objects are passed through."""
    save = _save or getattr(torch.save, "_unwrapped_save", torch.save)
    if not isinstance(f, (str, os.PathLike)):
        return save(obj, f, *args, **kwargs)
    path = os.fspath(f)
    partial = f"{path}.partial"
    try:
        save(obj, partial, *args, **kwargs)
        os.replace(partial, path)
    except BaseException as e:
        try:
            os.remove(partial)
        except OSError:
            pass
        if _no_space(e):
            raise OSError(errno.ENOSPC, f"no space left on device while saving {path} ({_free_mb(path):.0f} MB free "
                          f"there; the partial file was removed, {path} is as before). Free some space, then resume "
                          f"the training (the exp dir's run.sh) [{type(e).__name__}: {e}]") from e
        raise
    return None


def install() -> None:
    """Makes ``torch.save`` atomic in this process (idempotent)."""
    if getattr(torch.save, "_unwrapped_save", None) is not None:
        return
    original = torch.save

    def save(obj, f, *args, **kwargs):
        return atomic_save(obj, f, *args, _save=original, **kwargs)

    save._unwrapped_save = original
    save.__doc__ = original.__doc__
    torch.save = save
