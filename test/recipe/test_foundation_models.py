"""Stage 7 of synth_llm (local/foundation_models.sh): the shipped stand-ins match the config that made them and
meet their ceilings; --rebuild true makes them from scratch with the project's code, and they load through the
same path as real checkpoints; the install checks catch an edited config or a damaged file."""
import hashlib
import json
import os
import shutil

from espnet_speechllm.encoder.hf_speech_encoder import HFSpeechEncoder
from espnet_speechllm.llm.hf_causal_lm import HFCausalLM

from .conftest import REPO, copy_recipe, read_kv, run

RECIPE = os.path.join(REPO, "egs2", "synth_llm", "asr1")
SHIPPED = os.path.join(RECIPE, "pretrained_models")


def test_shipped_stand_ins_match_their_config_and_goals():
    info = json.load(open(f"{SHIPPED}/build_info.json"))
    config = open(f"{RECIPE}/conf/tiny_models.yaml", "rb").read()
    assert info["sha256"]["config"] == hashlib.sha256(config).hexdigest(), \
        "conf/tiny_models.yaml changed since pretrained_models/ was built: rebuild it (see local/foundation_models.sh)"
    run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=SHIPPED)
    llm = json.load(open(f"{SHIPPED}/llm/pretrain_report.json"))
    encoder = json.load(open(f"{SHIPPED}/encoder/pretrain_report.json"))
    # Goals: plain stretched copies >= 99 % on held-out sentences and on random strings; encoder CER <= 3 %. Not all
    # met (docs/competence.md): the LLM copies random strings at 98.8 % since its phase 2 taught it the adapter's
    # layout (98.2 % with fillers and noise level 1, against 66 % before, worth 3 points of WER), and the encoder's
    # CER is 3.5 %. These bounds keep the shipped models from getting worse than README reports.
    assert llm["copy_token_accuracy_heldout_sentences"] >= 0.99 and llm["copy_token_accuracy_random_strings"] >= 0.985
    assert llm["copy_token_accuracy_fillers_noise1_heldout_sentences"] >= 0.98
    assert llm["heldout_perplexity"] < 5.0
    assert encoder["heldout_utts"] == 50 and encoder["heldout_greedy_ctc_cer"] <= 0.035
    size = sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(SHIPPED) for f in files)
    assert size <= 20 * 2**20, size


def test_rebuild_install_and_checks(tmp_path, small_speech_dir):
    recipe = copy_recipe(RECIPE, str(tmp_path / "asr1"))
    text = tmp_path / "lm_text.txt"
    text.write_text("".join(f"{t}\n" for t in read_kv(f"{small_speech_dir}/text").values()) * 20)
    common = ["--text", str(text), "--pretrain_data", small_speech_dir, "--config", "conf/tiny_models_debug.yaml"]
    # --rebuild true: made here from scratch, loadable through the real-checkpoint path.
    built = tmp_path / "built"
    run(["local/foundation_models.sh", "--rebuild", "true", "--out", str(built), *common], cwd=recipe)
    assert HFSpeechEncoder(str(built / "encoder")).output_size() == 128
    assert HFCausalLM(str(built / "llm"), finetune="frozen").hidden_size == 128
    assert json.load(open(built / "build_info.json"))["sha256"]["config"] == hashlib.sha256(
        open(f"{recipe}/conf/tiny_models_debug.yaml", "rb").read()).hexdigest()

    # That build, used as the shipped copy: installed, then skipped on a rerun.
    out = tmp_path / "installed"
    install = ["local/foundation_models.sh", "--shipped", str(built), "--out", str(out), *common]
    proc = run(install, cwd=recipe)
    assert "installed the shipped stand-ins" in proc.stderr
    assert HFCausalLM(str(out / "llm"), finetune="frozen").hidden_size == 128
    assert "skipping" in run(install, cwd=recipe).stderr

    # A config that no longer matches the shipped models stops stage 7 with the way out.
    with open(f"{recipe}/conf/tiny_models_debug.yaml", "a") as f:
        f.write("seed: 1\n")
    proc = run(install, cwd=recipe, check=False)
    assert proc.returncode != 0 and "were built from another" in proc.stderr and "--rebuild true" in proc.stderr
    shutil.copy(f"{RECIPE}/conf/tiny_models_debug.yaml", f"{recipe}/conf/tiny_models_debug.yaml")

    # A damaged shipped file is caught by its checksum.
    with open(built / "llm" / "config.json", "a") as f:
        f.write(" ")
    proc = run(install, cwd=recipe, check=False)
    assert proc.returncode != 0 and "SHA256SUMS" in proc.stderr

    # Models built here are not replaced by an install without --force.
    proc = run(["local/foundation_models.sh", "--shipped", SHIPPED, "--out", str(built), "--text", str(text),
                "--pretrain_data", small_speech_dir], cwd=recipe, check=False)
    assert proc.returncode != 0 and "built here with --rebuild true" in proc.stderr
