"""Strings from users and configs never reach a shell: run_ablations.sh passes an ablation spec's data options
and its own pass-through options to run.sh as literal arguments (no eval), and rejects keys that are not
stage options. (run_local.sh and slurm.sh: test_utils.py and test_slurm.py.)"""
import json
import os
import sys

import yaml

from .conftest import TEMPLATE, run, stub_recipe

HOSTILE = ["0.9;touch INJ1", "$(touch INJ2)", "`touch INJ3`", "x >INJ4", "a' 'b\"c"]


def _ablation_recipe(tmp_path, data):
    r = stub_recipe(tmp_path)
    (r / "conf" / "train.yaml").write_text("max_epoch: 1\n")
    (r / "conf" / "decode.yaml").write_text("beam_size: 1\n")
    spec = {"train_config": "conf/train.yaml", "inference_config": "conf/decode.yaml",
            "tables": {"t": {"variants": {"v": {"data": data}}}}}
    (r / "conf" / "ablations.yaml").write_text(yaml.safe_dump(spec))
    (r / "run.sh").write_text(  # records its argument vector, one JSON list per call
        f"#!/bin/sh\nexec {sys.executable} -c 'import json, sys; print(json.dumps(sys.argv[1:]))' \"$@\" >>calls\n")
    (r / "run.sh").chmod(0o755)
    py = tmp_path / "python"  # the real interpreter, except the report (nothing was trained)
    py.write_text(f"#!/bin/sh\n[ \"$2\" = espnet_speechllm.bin.ablation_report ] && exit 0\nexec {sys.executable} \"$@\"\n")
    py.chmod(0o755)
    return r, str(py)


def test_run_ablations_passes_data_values_and_options_literally(tmp_path):
    data = {"speed_perturb_factors": HOSTILE[0], "noise_snr_range": HOSTILE[1], "nonspeech_edge_seconds": HOSTILE[2],
            "nonspeech_ratio": HOSTILE[3], "noise_aug_ratio": HOSTILE[4]}
    r, py = _ablation_recipe(tmp_path, data)
    run([os.path.join(TEMPLATE, "run_ablations.sh"), "--tables", "t", "--attention_set", "", "--python", py,
         "--", "--inference_args", "--x ;touch INJ5", "--local_data_opts", "$(touch INJ6)"], cwd=str(r))
    calls = [json.loads(line) for line in open(r / "calls")]
    data_call = next(c for c in calls if c[c.index("--stage") + 1] == "3")
    for key, value in data.items():
        assert data_call[data_call.index(f"--{key}") + 1] == value
    for c in calls:  # the pass-through options reach every call unchanged
        assert c[:4] == ["--inference_args", "--x ;touch INJ5", "--local_data_opts", "$(touch INJ6)"]
    assert not list(tmp_path.glob("**/INJ*")), "a string reached a shell"


def test_run_ablations_rejects_keys_that_are_not_stage_options(tmp_path):
    r, py = _ablation_recipe(tmp_path, {"nonspeech_ratio $(touch INJ1)": 0})
    p = run([os.path.join(TEMPLATE, "run_ablations.sh"), "--tables", "t", "--python", py], cwd=str(r), check=False)
    assert p.returncode != 0
    assert "unknown key(s) ['nonspeech_ratio $(touch INJ1)']" in p.stderr and "speed_perturb_factors" in p.stderr
    assert not (r / "calls").exists() and not list(tmp_path.glob("**/INJ*"))
