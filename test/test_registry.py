"""The component registry: no import cycle in the package, choices type-checked against the component interfaces,
and one answer to "which encoder does this training run use" -- the one ESPnet's parser gives."""
import ast
import os
import re

import pytest

from espnet_speechllm.adapter.abs_adapter import AbsAdapter
from espnet_speechllm.bin import which_encoder
from espnet_speechllm.encoder.abs_encoder import AbsEncoder
from espnet_speechllm.encoder.precomputed import PrecomputedEncoder
from espnet_speechllm.llm.abs_llm import AbsLLM
from espnet_speechllm.registry import PRECOMPUTED, adapter_choices, audio_encoder_choices, llm_choices, train_encoder
from espnet_speechllm.tasks.speechllm import SpeechLLMTask, encoder_choices
from espnet_speechllm.utils.cli import MissingInputError

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "espnet_speechllm")


def _import_graph():
    """module -> package modules it imports, at module level or inside a function."""
    root = os.path.dirname(PACKAGE)
    files = {}
    for d, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                module = os.path.relpath(os.path.join(d, name), root)[:-3].replace(os.sep, ".")
                files[module.removesuffix(".__init__")] = os.path.join(d, name)
    graph = {}
    for module, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("espnet_speechllm"):
                deps.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module
                            for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("espnet_speechllm"))
        graph[module] = deps & set(files) - {module}
    return graph


def test_no_import_cycle():
    graph = _import_graph()
    assert "espnet_speechllm.registry" in graph["espnet_speechllm.encoder.precomputed"]
    assert "espnet_speechllm.registry" in graph["espnet_speechllm.tasks.speechllm"]

    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for dep in graph[todo.pop()] - seen:
                seen.add(dep)
                todo.append(dep)
        return seen

    cycles = sorted(m for m in graph if m in reachable(m))
    assert cycles == [], f"modules that import themselves through others: {cycles}"


def test_choices_are_type_checked_against_the_interfaces():
    for choices, interface in ((encoder_choices, AbsEncoder), (audio_encoder_choices, AbsEncoder),
                               (adapter_choices, AbsAdapter), (llm_choices, AbsLLM)):
        assert choices.base_type is interface
        assert all(issubclass(cls, interface) for cls in choices.classes.values())
    assert encoder_choices.classes == {**audio_encoder_choices.classes, PRECOMPUTED: PrecomputedEncoder}
    assert SpeechLLMTask.class_choices_list == [encoder_choices, adapter_choices, llm_choices]


def _write(path, text):
    path.write_text(text)
    return str(path)


CASES = {  # (YAML, extra speechllm_train arguments, the encoder training uses)
    "block style": ("encoder: precomputed\nencoder_conf:\n  source: hubert\n", [], "precomputed"),
    "flow style": ("{encoder: precomputed, encoder_conf: {source: hubert}}\n", [], "precomputed"),
    "indented key is not the encoder": ("encoder_conf:\n  encoder: precomputed\n", [], "hubert"),
    "extra argument": ("encoder: hubert\n", ["--max_epoch", "2", "--encoder", "precomputed"], "precomputed"),
    "extra argument with =, any case": ("encoder: hubert\n", ["--encoder=Precomputed"], "precomputed"),
    "extra argument back to hubert": ("encoder: precomputed\n", ["--encoder", "hubert"], "hubert"),
    "no encoder: the default": ("adapter: linear\n", ["--max_epoch", "2"], "hubert"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_train_encoder_is_what_training_parses(tmp_path, case):
    yaml_text, extra, expected = CASES[case]
    config = _write(tmp_path / "train.yaml", yaml_text)
    assert train_encoder(config, extra)[0] == expected
    assert SpeechLLMTask.get_parser().parse_args(["--config", config, *extra]).encoder == expected


def test_train_encoder_reads_the_last_config_and_conf_overrides(tmp_path):
    first = _write(tmp_path / "a.yaml", "encoder: hubert\nencoder_conf: {model_dir: a, finetune: frozen}\n")
    second = _write(tmp_path / "b.yaml", "{encoder: precomputed, encoder_conf: {source: wavlm}}\n")
    extra = ["--config", second, "--encoder_conf", "source_conf.model_dir=m"]
    ours = train_encoder(first, extra)
    espnet = SpeechLLMTask.get_parser().parse_args(["--config", first, *extra])
    assert ours == (espnet.encoder, espnet.encoder_conf) == ("precomputed", {"source": "wavlm",
                                                                            "source_conf": {"model_dir": "m"}})


def test_which_encoder_prints_the_answer(tmp_path, capsys):
    flow = _write(tmp_path / "flow.yaml", "{encoder: precomputed, encoder_conf: {source: hubert}}\n")
    block = _write(tmp_path / "block.yaml", "encoder: hubert\n")
    for argv, expected in ((["--train_config", flow], "precomputed"),
                           (["--train_config", block, "--", "--max_epoch", "2", "--encoder", "precomputed"],
                            "precomputed"),
                           (["--train_config", block, "--", "--max_epoch", "2"], "hubert"),
                           (["--dump_dir", "true", "--train_config", flow], "encoder_feats/flow"),
                           (["--dump_dir", "true", "--train_config", block], "none")):
        which_encoder.main(argv)
        assert capsys.readouterr().out == expected + "\n", argv
    with pytest.raises(MissingInputError, match="nope.yaml not found"):
        which_encoder.main(["--train_config", str(tmp_path / "nope.yaml")])
    # A dump of the waveform CNN's outputs is named by the encoder dir, whatever the config or its fine-tuning.
    for argv in (["--train_config", block, "--", "--encoder_conf", "precomputed_frontend=true",
                  "--encoder_conf", "model_dir=exp/pretrained/encoder"],
                 ["--train_config", flow, "--", "--encoder", "hubert", "--encoder_conf", "precomputed_frontend=true",
                  "--encoder_conf", "model_dir=exp/pretrained/encoder", "--encoder_conf", "finetune=lora"]):
        which_encoder.main(["--dump_dir", "true", *argv])
        assert re.fullmatch(r"frontend_feats/encoder-[0-9a-f]{10}\n", capsys.readouterr().out), argv
