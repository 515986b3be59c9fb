"""ablation_report: sclite scores of each run -> one RESULTS.md section per table; rerunning one table keeps
the others, and stage 13's rewrite keeps them all."""
import json
from pathlib import Path

import yaml

from espnet_speechllm.report.ablation_plan import build_plan
from espnet_speechllm.report.ablation_tables import read_walltime, write_report
from espnet_speechllm.scoring.results_md import read_sections, write_keeping_sections

REFS = {"spk1-u1": "the cat sat on the mat", "spk1-u2": "a dog ran home"}  # 10 words


def _plan(tmp_path: Path, tables, seeds) -> dict:
    (tmp_path / "train.yaml").write_text(yaml.safe_dump({"max_epoch": 1}))
    (tmp_path / "decode.yaml").write_text(yaml.safe_dump({"beam_size": 4}))
    spec = {"train_config": str(tmp_path / "train.yaml"), "inference_config": str(tmp_path / "decode.yaml"),
            "tables": {"a_finetune": {"title": "(a) schemes", "variants": {"frozen": {}, "lora": {}}},
                       "b_matching": {"title": "(b) matching", "claim": "it helps", "variants": {"both": {}}}}}
    (tmp_path / "ablations.yaml").write_text(yaml.safe_dump(spec))
    build_plan(str(tmp_path / "ablations.yaml"), tables, seeds, str(tmp_path / "abl"), "train")
    return json.loads((tmp_path / "abl" / "plan.json").read_text())


def _decode(score_set, exp_root: Path, tag: str, variant: str, wrong_words: int, trainable: int) -> None:
    """One run's stage-12 outputs: real sclite scores of hypotheses with ``wrong_words`` substitutions."""
    exp = exp_root / f"asr_llm_{tag}"
    hyps = dict(REFS)
    hyps["spk1-u1"] = " ".join(["x"] * wrong_words + REFS["spk1-u1"].split()[wrong_words:])
    score_set(exp / f"decode_{variant}" / "test_clean", REFS, hyps)
    score_set(exp / f"decode_{variant}" / "nonspeech_test", {"ns-1": "", "ns-2": ""}, {"ns-1": "uh huh", "ns-2": ""},
              utt2dur={"ns-1": 3.0, "ns-2": 3.0}, extra_args=["--nonspeech", "true"])
    (exp / "param_report.json").write_text(json.dumps({"trainable": trainable, "total": 10 * trainable}))
    (exp / "train.log").write_text(  # ESPnet Trainer's lines: 4.5 minutes, valid acc of the last epoch
        "[vm] 2026-11-20 10:00:00,000 (trainer:338) INFO: 1epoch results: [train] loss=2.0, acc=0.4, "
        "[valid] loss=2.1, acc=0.5\n"
        f"[vm] 2026-11-20 10:04:30,000 (trainer:338) INFO: 2epoch results: [train] loss=1.0, acc=0.6, "
        f"[valid] loss=1.1, acc={0.6 + wrong_words / 100}\n")


def _row(section: str, variant: str):
    line = next(line for line in section.splitlines() if line.startswith(f"| {variant}"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_one_section_per_table_and_reruns_keep_the_others(tmp_path, score_set):
    exp_root, out = tmp_path / "exp", tmp_path / "RESULTS.md"
    plan = _plan(tmp_path, ["a_finetune", "b_matching"], [0, 1])
    for seed, wrong in ((0, 1), (1, 3)):  # seeds differ: 10% and 30% WER
        _decode(score_set, exp_root, f"abl_a_finetune_frozen_s{seed}", "frozen", wrong, 1000)
        _decode(score_set, exp_root, f"abl_a_finetune_lora_s{seed}", "lora", 2, 1500)
        _decode(score_set, exp_root, f"abl_b_matching_both_s{seed}", "both", 0, 1500)
    # The runner's records: the first launch did the work, a rerun only skipped it (a few seconds each).
    walltime = tmp_path / "walltime.tsv"
    walltime.write_text("".join(f"a_finetune\t{v}\t{seed}\t{step}\t{sec}\n"
                                for v in ("frozen", "lora") for seed in (0, 1)
                                for step, sec in (("train", 120), ("decode", 30), ("train", 2), ("decode", 5))))
    write_report(plan, exp_root, out, command="local/run_ablations.sh --seeds '0 1'", walltime=read_walltime(walltime))

    sections = read_sections(out)
    assert list(sections) == ["ablations", "ablations_a_finetune", "ablations_b_matching"]
    table_a = sections["ablations_a_finetune"]
    assert "seeds 0, 1; wall time 10.0 min for its 4 runs" in table_a  # 4 x (120 + 30) s; the reruns add nothing
    assert "wall time" not in sections["ablations_b_matching"]  # no records: no figure, rather than a wrong one
    frozen = _row(table_a, "frozen")
    assert frozen[1:5] == ["2", "1,000", "4.50 ±0.00", "0.620 ±0.010"]  # seeds, params, minutes, valid acc
    assert frozen[5].startswith("20.0 ±10.0 (20.0/0.0/0.0)")  # sclite: mean ±(max-min)/2 over the seeds
    assert frozen[6] == "50.0 ±0.0 / 20.0 ±0.0"  # 1 of 2 non-speech utts non-empty, 2 words in 6 s
    assert _row(table_a, "lora")[5].startswith("20.0 ±0.0 (20.0/0.0/0.0)")
    assert "Claim: it helps" in sections["ablations_b_matching"]

    # Table b alone again, with other scores: a's section stays as it was, b's is rewritten.
    _decode(score_set, exp_root, "abl_b_matching_both_s0", "both", 6, 1500)
    write_report(_plan(tmp_path, ["b_matching"], [0]), exp_root, out, command="local/run_ablations.sh --tables b")
    again = read_sections(out)
    assert again["ablations_a_finetune"] == table_a
    assert _row(again["ablations_b_matching"], "both")[5].startswith("60.0 (60.0/0.0/0.0)")
    assert out.read_text().count("<!-- ablations:begin -->") == 1

    # Stage 13 rewrites the file and keeps every table.
    write_keeping_sections(out, "# RESULTS\n\nnew report\n")
    assert list(read_sections(out)) == ["ablations", "ablations_a_finetune", "ablations_b_matching"]
