"""ablation_plan: variants = base YAMLs + overrides (null deletes), one run per seed, reuse rows, bad specs."""
import pytest
import yaml

from espnet_speechllm.report.ablation_plan import build_plan, merge


def test_merge_overrides_and_deletes():
    base = {"llm_conf": {"finetune": "lora", "lora_conf": {"r": 16}}, "max_epoch": 3}
    out = merge(base, {"llm_conf": {"finetune": "full", "lora_conf": None}, "max_epoch": 1})
    assert out == {"llm_conf": {"finetune": "full"}, "max_epoch": 1}
    assert base["llm_conf"]["lora_conf"] == {"r": 16}  # the base is not modified


def _spec(tmp_path, tables, **top):
    (tmp_path / "train.yaml").write_text(yaml.safe_dump({"encoder_conf": {"finetune": "lora", "lora_conf": {"r": 8}},
                                                         "max_epoch": 5}))
    (tmp_path / "decode.yaml").write_text(yaml.safe_dump({"beam_size": 4, "no_repeat_ngram_size": 3}))
    spec = {"train_config": str(tmp_path / "train.yaml"), "inference_config": str(tmp_path / "decode.yaml"),
            "tables": tables, **top}
    path = tmp_path / "ablations.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_plan_runs_and_yamls(tmp_path):
    spec = _spec(tmp_path, {
        "a": {"variants": {"frozen": {"train": {"encoder_conf": {"finetune": "frozen", "lora_conf": None}}},
                           "lora": {}}},
        "c": {"variants": {"base": {"data": {"speed_perturb_factors": "", "nonspeech_ratio": 0},
                                    "inference": {"no_repeat_ngram_size": 0}},
                           "constrained": {"same_model_as": "base"}}},
    }, train={"max_epoch": 1})
    runs = build_plan(spec, ["a", "c"], [0, 1], str(tmp_path / "out"), "train")
    assert len(runs) == 8 and [r["train"] for r in runs] == [True] * 6 + [False] * 2
    frozen = yaml.safe_load(open(tmp_path / "out/conf/a/frozen.yaml"))
    assert frozen == {"encoder_conf": {"finetune": "frozen"}, "max_epoch": 1}
    reuse = [r for r in runs if r["variant"] == "constrained"]
    assert [r["asr_tag"] for r in reuse] == ["abl_c_base_s0", "abl_c_base_s1"]
    assert reuse[0]["final_set"] == "train_abl_c_base" and reuse[0]["inference_tag"] == "decode_constrained"
    assert yaml.safe_load(open(reuse[0]["inference_config"]))["no_repeat_ngram_size"] == 3
    base = next(r for r in runs if r["variant"] == "base")
    args = open(base["data_args"]).read().split("\0")  # NUL-terminated arguments, read by no shell
    assert args[-1] == "" and sorted(zip(args[:-1:2], args[1::2])) == [
        ("--nonspeech_ratio", "0"), ("--speed_perturb_factors", "")]
    assert yaml.safe_load(open(base["inference_config"]))["no_repeat_ngram_size"] == 0


@pytest.mark.parametrize("tables, message", [
    ({"a": {"variants": {"x": {"trian": {}}}}}, "unknown key"),
    ({"a": {"variants": {False: {}}}}, "not a string"),
    ({"a": {"variants": {"x": {}, "y": {"same_model_as": "x", "train": {"max_epoch": 1}}}}}, "excludes"),
    ({"a": {"variants": {"y": {"same_model_as": "zz"}}}}, "no variant 'zz'"),
    # data keys are asr_llm.sh options of stages 3-5 only; names become dir names
    ({"a": {"variants": {"x": {"data": {"nonspeech_ratio; touch INJ": 0}}}}}, r"unknown key.*nonspeech_ratio; touch"),
    ({"a": {"variants": {"x": {"data": {"$(touch INJ)": 0}}}}}, "unknown key"),
    ({"a": {"variants": {"x": {"data": {"stage": 1}}}}}, "allowed: .*speed_perturb_factors"),
    ({"a": {"variants": {"x": {"data": {"nonspeech_ratio": [0, 1]}}}}}, "not a string or number"),
    ({"a": {"variants": {"x`id`": {}}}}, "may hold only"),
    ({"a;b": {"variants": {"x": {}}}}, "may hold only"),
])
def test_bad_specs_name_the_problem(tmp_path, tables, message):
    with pytest.raises(ValueError, match=message):
        build_plan(_spec(tmp_path, tables), [next(iter(tables))], [0], str(tmp_path / "out"), "train")
    assert not list(tmp_path.glob("**/INJ*"))


def test_unknown_table(tmp_path):
    with pytest.raises(ValueError, match="not in"):
        build_plan(_spec(tmp_path, {"a": {"variants": {"x": {}}}}), ["b"], [0], str(tmp_path / "out"), "train")
