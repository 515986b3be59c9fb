"""What a build of the tiny models says about itself: each model's ``pretrain_report.json``, the sha256 of its
inputs, and ``build_info.json`` + ``SHA256SUMS``, which stage 7 checks a shipped copy against before installing it
(egs2/synth_llm/asr1/local/foundation_models.sh)."""
import hashlib
import importlib.metadata
import json
import os
import time
from typing import Dict, List, Optional

import torch

# Files of the output dir that SHA256SUMS leaves out: itself and the done-markers.
UNSUMMED = ("SHA256SUMS", "tiny_models.done", "llm.done", "encoder.done")


def write_pretrain_report(out_dir: str, report: dict) -> None:
    with open(os.path.join(out_dir, "pretrain_report.json"), "w") as f:
        json.dump(report, f, indent=2)


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_hashes(config: Optional[str], text: str, pretrain_data: Optional[str]) -> Dict[str, str]:
    """sha256 of every input file: the config, the text pool and the encoder pretraining lists."""
    inputs = {"config": config, "text": text}
    if pretrain_data:
        inputs.update(pretrain_wav_scp=f"{pretrain_data}/wav.scp", pretrain_text=f"{pretrain_data}/text")
    return {k: sha256_file(v) for k, v in inputs.items() if v and os.path.isfile(v)}


def write_build_info(output_dir: str, text: str, pretrain_data: Optional[str], config: Optional[str],
                     inputs: dict, times: dict, rebuilt: List[str], wall_time: float) -> None:
    """``build_info.json`` (what the models were made from, and how long it took) and ``SHA256SUMS`` (every
    file, ``sha256sum -c`` format): stage 7 checks a shipped copy against both before installing it.

    ``llm_time_s``/``encoder_time_s`` are each model's own build time (a kept model's from the run that built it);
    ``from_scratch_time_s`` is what a build of both takes on this machine (they train at once); ``wall_time_s``
    is this run's."""
    info = {
        "command": "python -m espnet_speechllm.bin.make_tiny_models " + " ".join(
            f"--{k} {v}" for k, v in (("output_dir", output_dir), ("text", text),
                                      ("pretrain_data", pretrain_data), ("config", config)) if v),
        "sha256": inputs,
        "from_scratch_time_s": round(max(times.values()), 1), "wall_time_s": round(wall_time, 1),
        "llm_time_s": round(times["llm"], 1), "encoder_time_s": round(times["encoder"], 1), "rebuilt": rebuilt,
        "cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "torch": torch.__version__,
        "transformers": importlib.metadata.version("transformers"),
    }
    with open(os.path.join(output_dir, "build_info.json"), "w") as f:
        json.dump(info, f, indent=2)
    files = sorted(os.path.relpath(os.path.join(root, name), output_dir)
                   for root, _, names in os.walk(output_dir) for name in names if name not in UNSUMMED)
    with open(os.path.join(output_dir, "SHA256SUMS"), "w") as f:
        f.writelines(f"{sha256_file(os.path.join(output_dir, name))}  {name}\n" for name in files)
