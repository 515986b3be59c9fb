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
    "--foundation_opts", "--config conf/tiny_models_debug.yaml",
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
