"""Making the tiny foundation models (the stand-ins of the synth_llm recipe): a sentencepiece tokenizer, the LLM
(pretrain/tiny_llm.py) and the encoder (pretrain/tiny_encoder.py) in HF format under <output_dir>/{llm,encoder}.

Done-markers: ``llm.done`` and ``encoder.done`` record the settings and inputs each model was made from
(``part_settings``), so a rebuild with --force true retrains only the model whose settings changed;
``tiny_models.done`` records the whole config and the inputs' sha256, so other inputs are a stop, never a silent
reuse. Both models train at once, one core each."""
import json
import logging
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Optional

import torch
import yaml
from transformers import AutoTokenizer

from espnet_speechllm.pretrain.build_info import input_hashes, write_build_info
from espnet_speechllm.pretrain.tiny_config import load_config
from espnet_speechllm.pretrain.tiny_encoder import build_tiny_encoder
from espnet_speechllm.pretrain.tiny_llm import build_tiny_llm
from espnet_speechllm.pretrain.tokenizer import train_llama_tokenizer
from espnet_speechllm.utils.cli import setup_logging

logger = logging.getLogger(__name__)


def _build_one(kind: str, config: dict, source: str, out_dir: str, tokenizer_dir: str, threads: int) -> float:
    """Worker: builds the LLM or the encoder with its own thread count; returns its wall time."""
    setup_logging()
    torch.set_num_threads(threads)
    torch.manual_seed(config["seed"])
    t0 = time.time()
    if kind == "llm":
        build_tiny_llm(config, source, out_dir)
    else:
        build_tiny_encoder(config, source, out_dir, tokenizer_dir)
    return time.time() - t0


def part_settings(config: dict, part: str, inputs: dict) -> dict:
    """What one model is made from: the config sections and pretraining keys it reads, and its input files.

    A part whose settings are unchanged is kept by a rebuild, so editing the encoder's steps retrains the encoder
    only. Both parts read the tokenizer (the encoder's CTC units can be its tokens), hence the text pool.
    """
    pretrain = {k: v for k, v in config["pretrain"].items() if k.startswith(f"{part}_") or k == "eval_every"}
    files = {k: v for k, v in inputs.items() if k == "text" or (part == "encoder" and k.startswith("pretrain_"))}
    return {"config": {"seed": config["seed"], "tokenizer": config["tokenizer"], part: config[part],
                       "pretrain": pretrain}, "inputs": files}


def read_json(path: str):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def tokenizer_matches_encoder(llm_dir: str, enc_dir: str) -> bool:
    """A kept encoder trained on the LLM's tokens needs the very same vocabulary in the same order."""
    if (read_json(os.path.join(enc_dir, "pretrain_report.json")) or {}).get("units") != "llm_tokens":
        return True
    vocab = read_json(os.path.join(enc_dir, "ctc_vocab.json")) or []
    tokenizer = AutoTokenizer.from_pretrained(llm_dir)
    return vocab[1:] == tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))


def make_tiny_models(output_dir: str, text: str, pretrain_data: Optional[str] = None, config_path: Optional[str] = None,
                     threads: int = 1, force: bool = False) -> None:
    """Builds (or keeps) <output_dir>/{llm,encoder}; SystemExit when the outputs were made from other settings or
    inputs and not ``force``."""
    done = os.path.join(output_dir, "tiny_models.done")
    config = load_config(config_path)
    inputs = input_hashes(config_path, text, pretrain_data)
    # The done-marker records what the models were made from: other inputs are a stop, not a silent reuse.
    settings = json.dumps({"config": config, "inputs": inputs}, sort_keys=True)
    if os.path.exists(done) and not force:
        with open(done, encoding="utf-8") as f:
            if f.read() == settings:
                logger.info(f"{done}: models already built from these inputs, nothing to do (--force true rebuilds)")
                return
        raise SystemExit(f"{output_dir} was built from another config or other data ({done}); "
                         "rerun with --force true to rebuild the models whose inputs changed")
    dirs = {part: os.path.join(output_dir, part) for part in ("llm", "encoder")}
    markers = {part: os.path.join(output_dir, f"{part}.done") for part in dirs}
    wanted = {part: part_settings(config, part, inputs) for part in dirs}
    times, rebuild = {}, []
    for part, path in dirs.items():
        marker = read_json(markers[part])
        if marker is not None and marker["settings"] == wanted[part] and os.path.isdir(path):
            times[part] = marker["time_s"]
            logger.info(f"{path}: built from the same settings and inputs ({markers[part]}); kept")
            continue
        if os.path.exists(path):
            if not force:
                raise SystemExit(f"{path} exists but was not built from these inputs (an interrupted build?); "
                                 "rerun with --force true")
            shutil.rmtree(path)
        if os.path.exists(markers[part]):
            os.remove(markers[part])
        rebuild.append(part)
    t0 = time.time()
    if "llm" in rebuild:
        train_llama_tokenizer(text, dirs["llm"], config["tokenizer"]["vocab_size"])
        AutoTokenizer.from_pretrained(dirs["llm"]).save_pretrained(dirs["llm"])
        if "encoder" not in rebuild and not tokenizer_matches_encoder(dirs["llm"], dirs["encoder"]):
            logger.info(f"{dirs['encoder']}: its CTC units are the old tokenizer's; rebuilding it too")
            shutil.rmtree(dirs["encoder"])
            os.remove(markers["encoder"])
            rebuild.append("encoder")
    # Two models train at once, one core each: small models use a second thread poorly.
    cores = max(1, threads)
    sources = {"llm": text, "encoder": pretrain_data}
    if len(rebuild) == 2 and cores >= 2:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(2, mp_context=ctx) as pool:
            futures = {k: pool.submit(_build_one, k, config, sources[k], dirs[k], dirs["llm"], cores // 2)
                       for k in rebuild}
            built = {k: f.result() for k, f in futures.items()}
    else:
        built = {k: _build_one(k, config, sources[k], dirs[k], dirs["llm"], cores) for k in rebuild}
    for part, seconds in built.items():
        with open(markers[part], "w", encoding="utf-8") as f:
            json.dump({"settings": wanted[part], "time_s": round(seconds, 1)}, f, indent=2, sort_keys=True)
    times.update(built)
    with open(os.path.join(output_dir, "tiny_models.yaml"), "w") as f:
        yaml.safe_dump(config, f)
    write_build_info(output_dir, text, pretrain_data, config_path, inputs, times, rebuild, time.time() - t0)
    with open(done, "w", encoding="utf-8") as f:
        f.write(settings)
    for part in dirs:
        logger.info(f"{dirs[part]}: " + (f"built in {times[part]:.0f} s" if part in built else "kept"))
    logger.info(f"wrote {output_dir}/{{llm,encoder}} in {time.time() - t0:.1f}s")
