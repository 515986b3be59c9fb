"""Fixtures for the scoring tests: ESPnet-style text files and one call of score_wer per set."""
import json
from pathlib import Path
from typing import Dict, Optional

import pytest

from espnet_speechllm.bin import score_wer
from espnet_speechllm.scoring.sclite import find_sclite


def _write_kaldi(path: Path, entries: Dict[str, str]) -> Path:
    """``utt_id value`` per line; an empty value leaves the line holding only the id, as ESPnet writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for key, value in entries.items():
            f.write(f"{key} {value}".rstrip() + "\n")
    return path


@pytest.fixture
def write_kaldi():
    """The writer above, for tests that build files by hand."""
    return _write_kaldi


@pytest.fixture(scope="session")
def sclite_bin() -> str:
    exe = find_sclite()
    if exe is None:
        pytest.skip("NIST sclite not installed (Debian package 'sctk')")
    return exe


@pytest.fixture
def score_set(sclite_bin):
    """Write a data dir and a hypothesis file under ``root``, run score_wer, return the parsed outputs."""

    def run(
        root: Path,
        refs: Dict[str, str],
        hyps: Dict[str, str],
        utt2spk: Optional[Dict[str, str]] = None,
        utt2dur: Optional[Dict[str, float]] = None,
        extra_args=(),
    ) -> dict:
        data = root / "data"
        _write_kaldi(data / "text", refs)
        if utt2spk is not None:
            _write_kaldi(data / "utt2spk", utt2spk)
        if utt2dur is not None:
            _write_kaldi(data / "utt2dur", {k: str(v) for k, v in utt2dur.items()})
        hyp = _write_kaldi(root / "hyp" / "text", hyps)
        out = root / "score_wer"
        score_wer.main(
            ["--ref_text", str(data / "text"), "--hyp_text", str(hyp), "--out_dir", str(out)]
            + ["--sclite", sclite_bin]
            + list(extra_args)
        )
        result = json.loads((out / "result.json").read_text(encoding="utf-8"))
        hallu_path = out / "hallucination.json"
        hallu = json.loads(hallu_path.read_text(encoding="utf-8")) if hallu_path.exists() else None
        return {"out": out, "result": result, "hallucination": hallu}

    return run
