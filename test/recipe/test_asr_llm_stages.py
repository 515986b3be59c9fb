"""The plumbing of asr_llm.sh stages 8-13 (key-file splits, JOB expansion, merging, the exp dir's run.sh,
skips) with stand-in entry points: --python points at a wrapper that records each
``-m espnet_speechllm.bin.X`` call and writes the outputs X is specified to write."""
import os
import sys

import pytest
import torch

from espnet_speechllm.bin import finalize_model
from espnet_speechllm.utils.fingerprint import fingerprint

from .conftest import read_kv, run, stub_recipe, write_data_dir

FAKE = r'''
import os, sys
args = sys.argv[1:]
if args[:1] != ["-m"] or not args[1].startswith("espnet_speechllm.bin.") or args[1].endswith(".fingerprint") \
        or args[1].rsplit(".", 1)[1] in os.environ.get("REAL_TOOLS", "").split():
    os.execv(sys.executable, [sys.executable] + args)
mod, rest = args[1].rsplit(".", 1)[1], args[2:]
with open(os.environ["FAKE_CALLS"], "a") as f:
    f.write(mod + " " + " ".join(rest) + "\n")
opts = {}
for k, v in zip(rest[::2], rest[1::2]):
    opts.setdefault(k.lstrip("-"), []).append(v)
one = lambda k: opts[k][0]
def keys(path):
    return [line.split()[0] for line in open(path) if line.strip()]
if mod == "speechllm_train" and opts.get("collect_stats") == ["true"]:
    for mode in ("train", "valid"):
        d = os.path.join(one("output_dir"), mode)
        os.makedirs(d)
        open(f"{d}/batch_keys", "w").write("speech\ntext\n")
        open(f"{d}/stats_keys", "w").write("")
        for k in ("speech", "text"):
            with open(f"{d}/{k}_shape", "w") as f:
                for u in keys(one(f"{mode}_shape_file")):
                    f.write(f"{u} 16000\n")
elif mod == "speechllm_train":
    d = one("output_dir")
    open(f"{d}/config.yaml", "w").write("fake: true\n")
    open(f"{d}/valid.acc.best.pth", "w").write("")
elif mod == "finalize_model":
    model = os.path.join(one("exp_dir"), one("inference_model"))
    if not os.path.exists(model):  # as ESPnet's averaging: an existing model is kept
        open(model, "w").write("")
    os.makedirs(os.path.join(one("exp_dir"), "peft"), exist_ok=True)
elif mod == "speechllm_inference":
    for k in ("1best_recog", "2best_recog"):
        d = os.path.join(one("output_dir"), k)
        os.makedirs(d)
        with open(f"{d}/text", "w") as t, open(f"{d}/score", "w") as s:
            for u in keys(one("key_file")):
                t.write(f"{u} HELLO WORLD\n")
                s.write(f"{u} -1.5\n")
elif mod == "score_wer":
    d = one("out_dir")
    os.makedirs(d, exist_ok=True)
    n = len(keys(one("hyp_text")))
    open(f"{d}/result.txt", "w").write(
        f"| SPKR | # Snt # Wrd |\n| Sum/Avg | {n} {2 * n} | 50.0 50.0 0.0 0.0 50.0 100.0 |\n")
elif mod == "make_report":
    open(one("out"), "w").write("# results\n")
'''


def fake_dump(path, utts, empty=False):
    return write_data_dir(path, [(u, u.split("-")[0], f"{path}/data/wav.1.ark:{i}", "" if empty else "HI THERE")
                                 for i, u in enumerate(utts)])


@pytest.fixture
def recipe(tmp_path):
    r = stub_recipe(tmp_path)
    (r / "conf" / "decode_beam2.yaml").write_text("beam_size: 2\n")
    fake = tmp_path / "fakepy.py"
    fake.write_text(FAKE)
    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {fake} \"$@\"\n")
    wrapper.chmod(0o755)
    dump = r / "dump" / "raw"
    fake_dump(str(dump / "train_final"), [f"s{i}-u{j}" for i in range(2) for j in range(4)])
    fake_dump(str(dump / "dev"), ["d0-u0", "d0-u1", "d1-u0"])
    fake_dump(str(dump / "test_clean"), [f"t{i}-u0" for i in range(5)])
    fake_dump(str(dump / "nonspeech_test"), ["ns-a", "ns-b"], empty=True)
    for d in ("test_clean", "nonspeech_test"):
        with open(dump / d / "utt2num_samples", "w") as f:
            for u in read_kv(str(dump / d / "wav.scp")):
                f.write(f"{u} 16000\n")
    return dict(dir=str(r), python=str(wrapper), calls=str(tmp_path / "calls.txt"))


def asr_llm(recipe, *extra, check=True):
    args = ["./asr_llm.sh", "--stage", "8", "--stop_stage", "13", "--python", recipe["python"], "--nj", "3",
            "--inference_nj", "2", "--ngpu", "0", "--train_set", "train", "--valid_set", "dev",
            "--test_sets", "test_clean", "--train_config", "conf/train_tiny.yaml",
            "--inference_config", "conf/decode_beam2.yaml", "--train_args", "--max_epoch 2", *extra]
    return run(args, cwd=recipe["dir"], check=check, FAKE_CALLS=recipe["calls"])


def calls(recipe, mod):
    return [line.split()[1:] for line in open(recipe["calls"]) if line.split()[0] == mod]


def test_stages_8_to_13_plumbing(recipe):
    p = asr_llm(recipe)
    r = recipe["dir"]
    out = p.stdout + p.stderr
    assert "Successfully finished" in out
    # stage 8: 3 stats jobs on key splits, aggregated
    stats = [c for c in calls(recipe, "speechllm_train") if "--collect_stats" in c]
    assert len(stats) == 3
    assert ["--train_data_path_and_name_and_type", "dump/raw/train_final/wav.scp,speech,audio"] == stats[0][4:6]
    assert sorted(c[c.index("--output_dir") + 1] for c in stats) == [
        f"exp/stats_train_tiny/logdir/stats.{n}" for n in (1, 2, 3)]  # jobs run in parallel: any order
    assert len(read_kv(f"{r}/exp/stats_train_tiny/train/speech_shape")) == 8
    assert len(read_kv(f"{r}/exp/stats_train_tiny/valid/text_shape")) == 3
    # stage 9: shape files, resume, extra args, run.sh of the exp dir
    train = [c for c in calls(recipe, "speechllm_train") if "--collect_stats" not in c][0]
    assert train[train.index("--output_dir") + 1] == "exp/asr_llm_train_tiny"
    assert train.count("--train_shape_file") == 2 and "--resume" in train and train[-2:] == ["--max_epoch", "2"]
    runsh = open(f"{r}/exp/asr_llm_train_tiny/run.sh").read()
    assert "--stage 9 --stop_stage 9" in runsh and f"cd {r}" in runsh
    # stage 10: the call parses with the tool's own parser; it rewrites peft/ (the stage runs only when needed)
    (finalize,) = calls(recipe, "finalize_model")
    assert finalize_model.get_parser().parse_args(finalize).force is True
    # stage 11: 2 jobs per set, merged; the non-speech test set is decoded too
    infer = calls(recipe, "speechllm_inference")
    assert len(infer) == 4
    assert all(c[c.index("--model_file") + 1] == "exp/asr_llm_train_tiny/valid.acc.ave.pth" for c in infer)
    dec = f"{r}/exp/asr_llm_train_tiny/decode_beam2_valid.acc.ave"
    assert list(read_kv(f"{dec}/test_clean/text")) == [f"t{i}-u0" for i in range(5)]
    assert len(read_kv(f"{dec}/test_clean/2best_recog/score")) == 5
    # stage 12: --nonspeech only for the non-speech set; results printed
    score = {c[c.index("--hyp_text") + 1].split("/")[-2]: c for c in calls(recipe, "score_wer")}
    assert "--nonspeech" in score["nonspeech_test"] and "--nonspeech" not in score["test_clean"]
    assert "Sum/Avg" in out
    # stage 13
    assert open(f"{r}/RESULTS.md").read() == "# results\n"
    # rerun: stats and decoding skipped, training resumed
    open(recipe["calls"], "w").close()
    p = asr_llm(recipe)
    out = p.stdout + p.stderr
    assert "exp/stats_train_tiny is done; skipping" in out
    assert "decode_beam2_valid.acc.ave/test_clean is done; skipping" in out
    assert not calls(recipe, "speechllm_inference") and len(calls(recipe, "speechllm_train")) == 1


@pytest.mark.parametrize("how", ["flow-style YAML", "--train_args", "neither"])
def test_stage_8_asks_python_whether_the_encoder_is_precomputed(recipe, how):
    """The answer comes from the YAML and the extra training arguments as training reads them (a grep of the YAML
    missed flow style and --train_args): a precomputed encoder's outputs are dumped, then trained on."""
    r = recipe["dir"]
    with open(f"{r}/conf/train_pre.yaml", "w") as f:
        f.write("{encoder: precomputed, encoder_conf: {source: hubert}}\n" if how == "flow-style YAML" else "x: 1\n")
    extra = ["--train_args", "--max_epoch 2 --encoder precomputed"] if how == "--train_args" else []
    run(["./asr_llm.sh", "--stage", "8", "--stop_stage", "8", "--python", recipe["python"], "--nj", "1",
         "--train_set", "train", "--valid_set", "dev", "--test_sets", "test_clean",
         "--train_config", "conf/train_pre.yaml", *extra], cwd=r, FAKE_CALLS=recipe["calls"], REAL_TOOLS="which_encoder")
    dumps = calls(recipe, "dump_encoder_feats")
    (stats,) = [c for c in calls(recipe, "speechllm_train") if "--collect_stats" in c]
    speech = stats[stats.index("--train_data_path_and_name_and_type") + 1]
    if how == "neither":
        assert dumps == [] and speech == "dump/raw/train_final/wav.scp,speech,audio"
    else:
        assert [c[c.index("--out_dir") + 1] for c in dumps] == [
            f"dump/encoder_feats/train_pre/{s}" for s in ("train_final", "dev")]
        assert speech == "dump/encoder_feats/train_pre/train_final/feats.scp,speech,kaldi_ark"


def test_changed_model_or_decode_yaml_is_never_reused(recipe):
    """Done-markers record content: a model file or decoding YAML changed in place (same path) stops stages
    10-13 with the difference and the way out, and stage 12 never scores hypotheses of the old model."""
    asr_llm(recipe)
    r = recipe["dir"]
    exp = f"{r}/exp/asr_llm_train_tiny"
    dec = f"{exp}/decode_beam2_valid.acc.ave/test_clean"
    with open(f"{exp}/valid.acc.ave.pth", "wb") as f:  # more training changed the model (3 MB: size, head, tail)
        f.write(os.urandom(3 << 20))
    p = asr_llm(recipe, "--stage", "10", check=False)
    assert p.returncode != 0 and "valid.acc.ave.pth + peft/ (stage 10) was made with other settings or inputs" in p.stderr
    assert "exp/asr_llm_train_tiny/valid.acc.ave.pth size=3145728" in p.stderr
    assert "--stage 10 --stop_stage 10 --force true" in p.stderr
    asr_llm(recipe, "--stage", "10", "--stop_stage", "10", "--force", "true")
    for stage in ("11", "12", "13"):  # decoding, scoring and the report all see that the model changed
        p = asr_llm(recipe, "--stage", stage, check=False)
        assert p.returncode != 0 and "valid.acc.ave.pth size=3145728" in p.stderr, (stage, p.stderr[-2000:])
    assert "test_clean: its hypotheses were not decoded from the current inputs" in p.stderr
    open(recipe["calls"], "w").close()
    asr_llm(recipe, "--stage", "11", "--force", "true")
    assert len(calls(recipe, "speechllm_inference")) == 4 and "valid.acc.ave.pth size=3145728" in open(f"{dec}/.done").read()
    # the decoding YAML edited in place
    with open(f"{r}/conf/decode_beam2.yaml", "a") as f:
        f.write("length_penalty: 1.5\n")
    p = asr_llm(recipe, "--stage", "11", check=False)
    assert p.returncode != 0 and "test_clean was made with other settings or inputs" in p.stderr
    assert "conf/decode_beam2.yaml sha256=" in p.stderr and "--stage 11 --stop_stage 11 --force true" in p.stderr
    p = asr_llm(recipe, "--stage", "12", check=False)
    assert p.returncode != 0 and "its hypotheses were not decoded from the current inputs" in p.stderr
    open(recipe["calls"], "w").close()
    asr_llm(recipe, "--stage", "11", "--force", "true")
    assert len(calls(recipe, "speechllm_inference")) == 4 and len(calls(recipe, "score_wer")) == 2


def test_missing_config_is_named(recipe):
    p = asr_llm(recipe, "--train_config", "conf/nope.yaml", check=False)
    assert p.returncode != 0 and "conf/nope.yaml: no such file" in p.stderr
    p = run(["./asr_llm.sh", "--train_set", "a"], cwd=recipe["dir"], check=False)
    assert p.returncode != 0 and "--valid_set is required" in p.stderr
    p = run(["./asr_llm.sh", "--stage", "9", "--stop_stage", "9", "--train_set", "train", "--valid_set", "dev",
             "--test_sets", "x", "--train_config", "conf/train_tiny.yaml", "--python", recipe["python"]],
            cwd=recipe["dir"], check=False, FAKE_CALLS=recipe["calls"])
    assert p.returncode != 0 and "run stage 8 first" in p.stderr


def test_fingerprint_follows_content_not_mtime(tmp_path):
    """A model rewritten with the same bytes (ESPnet re-averages at every launch) keeps its fingerprint; one
    changed byte anywhere in a torch zip changes it (the zip's tail holds each entry's CRC-32)."""
    model = tmp_path / "valid.acc.ave.pth"
    state = {"w": torch.arange(2_000_000, dtype=torch.float32)}  # 8 MB
    torch.save(state, model)
    first = fingerprint(str(model))
    os.utime(model, (1, 1))
    torch.save(state, model)
    assert fingerprint(str(model)) == first and first.startswith("size=")
    state["w"][1_000_000] = -1.0  # in the middle, outside the first and last MB of data
    torch.save(state, model)
    assert fingerprint(str(model)) != first
