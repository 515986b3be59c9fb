"""The LibriSpeech ablation plan, table (a), built variant by variant at full size on the meta device (real
vicuna-7b-v1.5 config and tokenizer, the reference HuBERT-large config): the trainable parameters of the paper's
fine-tuning schemes are known before any GPU hour, and equal LoRA's count from the shapes."""
import os

from espnet_speechllm.bin import plan_params
from espnet_speechllm.report.planned_params import planned_table

from .conftest import LIBRISPEECH_CONF, VICUNA_DIR, needs_vicuna

RECIPE = os.path.dirname(LIBRISPEECH_CONF)


def _cells(lines, variant):
    row = next(line for line in lines if line.startswith(f"| {variant} |"))
    return [c.strip() for c in row.strip("|").split("|")]


@needs_vicuna
def test_table_a_trainable_parameters_at_full_size(monkeypatch, tmp_path):
    monkeypatch.chdir(RECIPE)  # the spec's paths are relative to its recipe
    lines = planned_table("conf/ablations.yaml", "a_finetune", None, VICUNA_DIR)
    # LoRA adds r x (d_in + d_out) per adapted matrix: encoder r8 on q,v of layers 4-23 (of 24, width 1024: the
    # paper's 0.65M); LLM r16 on q,k,v,o of 32 layers of 4096 (16.8M).
    encoder_lora, llm_lora = 20 * 2 * 8 * (1024 + 1024), 32 * 4 * 16 * (4096 + 4096)
    paper = _cells(lines, "lora_lora")
    assert paper[1] == f"{encoder_lora:,}" and paper[3] == f"{llm_lora:,}"
    frozen = _cells(lines, "frozen_frozen")
    assert frozen[1] == frozen[3] == "0" and frozen[2] == paper[2]  # the adapter trains in every scheme
    full = _cells(lines, "full_full")
    assert int(full[3].replace(",", "")) > 6.5e9  # Vicuna-7B whole
    out = tmp_path / "RESULTS.md"
    out.write_text("# RESULTS\n\nkept\n")
    plan_params.main(["--spec", "conf/ablations.yaml", "--tables", "a_finetune", "--llm_dir", VICUNA_DIR,
                      "--out", str(out)])
    text = out.read_text()
    assert "kept" in text and "<!-- planned_params:begin -->" in text and f"{llm_lora:,}" in text
