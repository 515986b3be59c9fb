"""Every YAML under egs2/*/asr1/conf still matches the code (as ESPnet's test_configuration_espnet2.sh checks).

- A training YAML (one with ``encoder`` and ``llm``) is parsed by the task's own parser, which rejects unknown
  keys, and its model is built: the synth recipe's on its committed tiny models, the LibriSpeech recipe's at
  the published HuBERT-large / Vicuna-7B shapes on the meta device.
- An ablation spec is expanded by ``ablation_plan.build_plan`` and each variant's training YAML is parsed and
  built the same way (the LibriSpeech variants with a 2-layer Vicuna-shaped LLM: LoRA there names no layers).
- Decoding YAMLs go through the decoder's loader, tiny-model YAMLs through ``make_tiny_models``'.
"""
import glob
import os
import shutil

import pytest
import torch
import yaml

from espnet_speechllm.decode.config import load_decode_config
from espnet_speechllm.pretrain.tiny_config import merge_config
from espnet_speechllm.report.ablation_plan import build_plan
from espnet_speechllm.tasks.speechllm import SpeechLLMTask
from espnet_speechllm.utils.reference_configs import HUBERT_LARGE_LL60K, vicuna_7b_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYNTH_MODELS = f"{REPO}/egs2/synth_llm/asr1/pretrained_models"
CONFS = sorted(glob.glob(f"{REPO}/egs2/*/asr1/conf/*.yaml"))


def _load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def _kind(path) -> str:
    conf, name = _load(path), os.path.basename(path)
    if name.startswith("tiny_models"):  # sections encoder: and llm: of the stand-in models
        return "tiny_models"
    if "encoder" in conf and "llm" in conf:
        return "train"
    if "tables" in conf:
        return "ablations"
    if name.startswith("decode"):
        return "decode"
    return "other"


def _rel(path) -> str:
    return os.path.relpath(path, REPO)


def test_every_conf_yaml_has_a_check():
    kinds = {_rel(p): _kind(p) for p in CONFS}
    assert "other" not in kinds.values(), f"a conf YAML no test validates: {kinds}"
    assert "train" in kinds.values() and "decode" in kinds.values() and "ablations" in kinds.values()


@pytest.fixture(scope="module")
def vicuna_dirs(tmp_path_factory):
    """Vicuna-7B-shaped LLM dirs (architecture config + a small tokenizer), 32 and 2 layers."""
    dirs = {}
    for layers in (32, 2):
        d = tmp_path_factory.mktemp(f"vicuna_{layers}")
        for name in ("tokenizer.model", "tokenizer_config.json"):
            shutil.copy(f"{SYNTH_MODELS}/llm/{name}", d / name)
        vicuna_7b_config(num_hidden_layers=layers).save_pretrained(d)
        dirs[layers] = str(d)
    return dirs


def _localize(conf: dict, recipe: str, vicuna_dir: str) -> bool:
    """Points the YAML's foundation-model dirs at models this test has; returns True for a meta-device build."""
    meta = not recipe.endswith("synth_llm/asr1")
    for key in ("encoder_conf", "llm_conf"):
        sub = conf.get(key) or {}
        if "source_conf" in sub:  # a precomputed encoder names its source encoder
            sub = sub["source_conf"]
        if "model_dir" not in sub:
            continue
        assert sub["model_dir"] == f"exp/pretrained/{key[:-5]}", f"{key}.model_dir: {sub['model_dir']}"
        if not meta:
            sub["model_dir"] = f"{SYNTH_MODELS}/{key[:-5]}"
        elif key == "encoder_conf":
            sub.pop("model_dir")
            sub["hf_config"] = dict(model_type="hubert", **HUBERT_LARGE_LL60K)
        else:
            sub.update(model_dir=vicuna_dir, random_init=True)
    return meta


def build_from_yaml(path: str, recipe: str, vicuna_dir: str, tmp_path):
    """Parse ``path`` with the task's parser (unknown keys are errors), then build the model."""
    args = SpeechLLMTask.get_parser().parse_args(["--config", path])
    conf = vars(args)
    meta = _localize(conf, recipe, vicuna_dir)
    with torch.device("meta" if meta else "cpu"):
        model = SpeechLLMTask.build_model(args)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) > 0
    return model


TRAIN = [p for p in CONFS if _kind(p) == "train"]
ABLATIONS = [p for p in CONFS if _kind(p) == "ablations"]


@pytest.mark.parametrize("path", TRAIN, ids=_rel)
def test_train_yaml_builds(path, vicuna_dirs, tmp_path, monkeypatch):
    recipe = os.path.dirname(os.path.dirname(path))
    monkeypatch.chdir(recipe)  # paths in the YAMLs (deepspeed_config, ...) are relative to the recipe dir
    build_from_yaml(path, recipe, vicuna_dirs[32], tmp_path)


@pytest.mark.parametrize("path", ABLATIONS, ids=_rel)
def test_ablation_variants_build(path, vicuna_dirs, tmp_path, monkeypatch):
    recipe = os.path.dirname(os.path.dirname(path))
    monkeypatch.chdir(recipe)
    spec = _load(path)
    runs = build_plan(os.path.relpath(path, recipe), list(spec["tables"]), [0], str(tmp_path), "train")
    assert runs
    for train_yaml in sorted({r["train_config"] for r in runs if r["train"]}):
        build_from_yaml(train_yaml, recipe, vicuna_dirs[2], tmp_path)
    for infer_yaml in sorted({r["inference_config"] for r in runs}):
        load_decode_config(infer_yaml)


@pytest.mark.parametrize("path", [p for p in CONFS if _kind(p) == "decode"], ids=_rel)
def test_decode_yaml_loads(path):
    load_decode_config(path)


@pytest.mark.parametrize("path", [p for p in CONFS if _kind(p) == "tiny_models"], ids=_rel)
def test_tiny_models_yaml_loads(path):
    merge_config(_load(path))


def test_a_stale_key_fails(tmp_path):
    """The check is not vacuous: a key the code no longer knows is an error that names it."""
    conf = _load(f"{REPO}/egs2/synth_llm/asr1/conf/train.yaml")
    conf["adapter_conf"]["no_such_option"] = 1
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(conf))
    with pytest.raises((TypeError, ValueError), match="no_such_option"):
        build_from_yaml(str(path), f"{REPO}/egs2/synth_llm/asr1", "", tmp_path)
