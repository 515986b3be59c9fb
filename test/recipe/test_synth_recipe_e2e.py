"""egs2/synth_llm/asr1 end to end, stages 1-13, with CI sizes: a copy of the recipe runs through its own
run.sh, and the sclite reports, hallucination figures and RESULTS.md it writes must exist and agree."""
import glob
import json
import os
import re
import shutil

import pytest

from .conftest import REPO, copy_recipe, run

RECIPE = os.path.join(REPO, "egs2", "synth_llm", "asr1")
TEST_SETS = ["test_clean", "test_other", "test_nonspeech_edges"]
CI_ARGS = [
    "--local_data_opts", "--preset ci",
    "--nonspeech_opts", "--num_train 16 --num_test 6 --num_bank 8",
    "--foundation_opts", "--config conf/tiny_models_debug.yaml --rebuild true",
    "--train_config", "conf/train_debug.yaml",
    "--inference_config", "conf/decode_debug.yaml",
]


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are required")
    recipe = copy_recipe(RECIPE, str(tmp_path_factory.mktemp("synth_recipe") / "asr1"))
    first = run(["./run.sh", *CI_ARGS], cwd=recipe)
    return dict(recipe=recipe, first=first)


def sum_avg_counts(result_txt: str):
    """Snt, Wrd and the Corr/Sub/Del/Ins/Err/S.Err fields of sclite's Sum/Avg row."""
    with open(result_txt) as f:
        row = next(line for line in f if "Sum/Avg" in line)
    return [float(x) for x in re.findall(r"[-\d.]+", row)]


def test_every_stage_ran(recipe_run):
    log = recipe_run["first"].stdout + recipe_run["first"].stderr
    for n in range(1, 14):
        assert f"Stage {n}:" in log, f"stage {n} did not run"
    assert "Successfully finished" in log


def test_sclite_reports_per_test_set(recipe_run):
    decode_dirs = glob.glob(f"{recipe_run['recipe']}/exp/asr_llm_train_debug/decode_*")
    assert len(decode_dirs) == 1
    for test_set in TEST_SETS + ["nonspeech_test"]:
        score = f"{decode_dirs[0]}/{test_set}/score_wer"
        result = json.load(open(f"{score}/result.json"))
        row = sum_avg_counts(f"{score}/result.txt")
        assert row[0] == result["counts"]["Snt"] and row[1] == result["counts"]["Wrd"]
        hyp_utts = [line.split()[0] for line in open(f"{decode_dirs[0]}/{test_set}/text")]
        assert len(hyp_utts) == result["counts"]["Snt"] > 0
    hall = json.load(open(f"{decode_dirs[0]}/nonspeech_test/score_wer/hallucination.json"))
    assert hall["num_utts"] == hall["num_empty_refs"] == 6 and hall["audio_minutes"] > 0


def test_results_md_tables_parse(recipe_run):
    text = open(f"{recipe_run['recipe']}/RESULTS.md").read()
    decode_dir = glob.glob(f"{recipe_run['recipe']}/exp/asr_llm_train_debug/decode_*")[0]
    for test_set in TEST_SETS:
        row = next(line for line in text.splitlines() if line.startswith(f"|{test_set}|"))
        cells = row.strip("|").split("|")
        result = json.load(open(f"{decode_dir}/{test_set}/score_wer/result.json"))
        assert int(cells[1]) == result["counts"]["Snt"] and int(cells[2]) == result["counts"]["Wrd"]
    assert os.path.getsize(f"{recipe_run['recipe']}/exp/asr_llm_train_debug/images/train_curves.png") > 1000


def test_rerun_skips_finished_stages(recipe_run):
    again = run(["./run.sh", *CI_ARGS], cwd=recipe_run["recipe"])
    log = again.stdout + again.stderr
    assert "Successfully finished" in log
    assert "skip" in log.lower()


ABLATION_VARIANTS = {"a_finetune": ["frozen_lora", "lora_lora"], "b_matching": ["none", "both"],
                     "c_insertion": ["baseline", "constraints"]}


def _table_rows(text: str, title_start: str):
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"### {title_start}"))
    start = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))  # the header row
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return lines[start], rows


def test_ablation_tables(recipe_run):
    recipe = recipe_run["recipe"]
    proc = run(["local/run_ablations.sh", "--spec", "conf/ablations_debug.yaml", "--max_test_utts", "3",
                "--test_sets", "test_clean test_other", "--nonspeech_test_set", "nonspeech_test",
                "--report", "RESULTS.md", "--", *CI_ARGS],
               cwd=recipe)
    text = open(f"{recipe}/RESULTS.md").read()
    assert "## Environments" in text, "stage 13's report must be kept"
    assert text.count("<!-- ablations:begin -->") == 1 and "local/run_ablations.sh --spec" in text
    for table, variants in ABLATION_VARIANTS.items():
        header, rows = _table_rows(text, f"({table[0]})")
        assert [r[0].split(" (")[0] for r in rows] == variants
        assert "test_clean_abl3 WER % (Sub/Del/Ins)" in header and "nonspeech_test_abl3 non-empty %" in header
        for variant, row in zip(variants, rows):
            owner = "baseline" if variant == "constraints" else variant
            exp = f"{recipe}/exp/asr_llm_abl_{table}_{owner}_s0"
            result = json.load(open(f"{exp}/decode_{variant}/test_clean_abl3/score_wer/result.json"))
            assert result["counts"]["Snt"] == 3
            wer_cell = row[header.strip("|").split("|").index(" test_clean_abl3 WER % (Sub/Del/Ins) ")]
            assert wer_cell.startswith(f"{result['percent']['Err']:.1f} (")
            trainable = json.load(open(f"{exp}/param_report.json"))["trainable"]
            assert row[2] == f"{trainable:,}"
    # (a): a frozen encoder trains fewer parameters than an encoder with LoRA; that variant trained on the
    # encoder outputs stage 8 dumped ("encoder: precomputed") and decoded from audio.
    _, rows = _table_rows(text, "(a)")
    assert int(rows[0][2].replace(",", "")) < int(rows[1][2].replace(",", ""))
    feats = f"{recipe}/dump/encoder_feats/frozen_lora"
    assert os.path.getsize(f"{feats}/train_final/feats.ark") > 0 and os.path.isfile(f"{feats}/dev/.done")
    assert "kaldi_ark" in open(f"{recipe}/exp/asr_llm_abl_a_finetune_frozen_lora_s0/config.yaml").read()
    # (b): the matching-loss variant has its cross-attention map, the other none.
    assert os.path.getsize(f"{recipe}/exp/asr_llm_abl_b_matching_both_s0/images/matching_attention.png") > 1000
    assert not os.path.exists(f"{recipe}/exp/asr_llm_abl_b_matching_none_s0/images/matching_attention.png")
    # (c): the baseline trained on its own set, without non-speech or augmented copies; "constraints"
    # decoded that model (no training of its own) with the n-gram constraint on.
    utts = [line.split()[0] for line in open(f"{recipe}/dump/raw/train_abl_c_insertion_baseline/wav.scp")]
    assert utts and not any(u.startswith(("sp0.9-", "sp1.1-", "noisy-", "nstrain-")) for u in utts)
    assert not os.path.exists(f"{recipe}/exp/asr_llm_abl_c_insertion_constraints_s0")
    decode = f"{recipe}/exp/ablations/conf/c_insertion"
    assert "no_loop_ngram_size: 0" in open(f"{decode}/baseline_decode.yaml").read()
    assert "no_repeat_ngram_size: 0" in open(f"{decode}/baseline_decode.yaml").read()
    assert "no_loop_ngram_size: 6" in open(f"{decode}/constraints_decode.yaml").read()
    # A rerun redoes nothing; stage 13 rewriting RESULTS.md keeps the ablation section.
    model = f"{recipe}/exp/asr_llm_abl_a_finetune_lora_lora_s0/valid.acc.ave.pth"
    hyp = f"{recipe}/exp/asr_llm_abl_a_finetune_lora_lora_s0/decode_lora_lora/test_clean_abl3/text"
    mtimes = (os.path.getmtime(model), os.path.getmtime(hyp))
    run(["local/run_ablations.sh", "--spec", "conf/ablations_debug.yaml", "--max_test_utts", "3",
                 "--test_sets", "test_clean test_other", "--nonspeech_test_set", "nonspeech_test",
                 "--report", "RESULTS.md", "--", *CI_ARGS],
                cwd=recipe)
    assert (os.path.getmtime(model), os.path.getmtime(hyp)) == mtimes
    run(["./run.sh", *CI_ARGS, "--stage", "13"], cwd=recipe)
    text = open(f"{recipe}/RESULTS.md").read()
    assert text.count("<!-- ablations:begin -->") == 1
    for table in ABLATION_VARIANTS:
        _, rows = _table_rows(text, f"({table[0]})")
        assert all(float(row[3]) >= 0 for row in rows), rows  # training time survives the rerun
    section = text[text.index("<!-- ablations:begin -->"):]
    images = [line for line in section.splitlines() if line.startswith("![")]
    assert images == ["![both](exp/asr_llm_abl_b_matching_both_s0/images/matching_attention.png)"]
    assert "ablation tables written" in proc.stderr
