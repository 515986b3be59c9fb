"""Multi-process training through ESPnet's DDP on CPU, and the DeepSpeed config without DeepSpeed installed.

DDP: ESPnet spawns its own workers only for GPUs (``--ngpu N --multiprocessing_distributed true``); on CPU the
same Trainer runs distributed when each process is started with its rank (what ``espnet2.bin.launch --host``
does per host): ``--ngpu 0 --multiprocessing_distributed false --dist_backend gloo --dist_world_size 2
--dist_rank R --dist_init_method file://...``. ESPnet then splits every global batch between the ranks
(``batch[rank::world_size]``) and wraps the model in ``DistributedDataParallel``.

Parity: 2 ranks x 1 utterance must train the same parameters as 1 process x 2 utterances (the same global
batches, in the same order). ESPnet's DDP gradient is the utterance-weighted mean of the per-rank losses, while
one process takes the CE (and matching-loss) mean over all tokens of the batch; the two are the same when every
utterance has the same number of target tokens, so the training transcripts are word permutations of one
sentence (checked). Dropout is off: its random masks depend on how a batch is split.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONF = f"{REPO}/egs2/librispeech_llm/asr1/conf"

# Same words, different order: same tokens per utterance, different audio lengths.
TRAIN = ["THE CAT SAT ON THE MAT", "THE MAT SAT ON THE CAT", "ON THE MAT THE CAT SAT", "THE CAT ON THE MAT SAT"]
VALID = ["MARY READS A GREEN BOOK", "A GREEN BOOK MARY READS"]
NO_DROPOUT = dict(hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0)


def speak(text: str, path: str) -> str:
    raw = path + ".raw.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "170", "-w", raw, text], check=True)
    subprocess.run(["sox", raw, "-r", "16000", "-c", "1", "-b", "16", path], check=True)
    os.remove(raw)
    return path


@pytest.fixture(scope="module")
def permuted_corpus(tmp_path_factory, make_data_dir):
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are required")
    root = tmp_path_factory.mktemp("ddp_corpus")
    dirs = {}
    for name, sentences in (("train", TRAIN), ("valid", VALID)):
        utts = [(f"{name}{i}", speak(s, str(root / f"{name}{i}.wav")), s) for i, s in enumerate(sentences)]
        dirs[name] = make_data_dir(str(root / name), utts)
    return dirs


def train_config(make_train_yaml, tiny_models, path, batch_size: int) -> str:
    lora = dict(r=4, alpha=8, target_modules=["q_proj", "v_proj"])
    encoder_conf = dict(model_dir=f"{tiny_models}/encoder", finetune="lora", lora_conf=lora,
                        config_overrides=NO_DROPOUT)
    return make_train_yaml(tiny_models, path, encoder_conf=encoder_conf, batch_type="unsorted",
                           batch_size=batch_size, valid_batch_size=batch_size, optim="sgd", optim_conf=dict(lr=0.1),
                           grad_clip=100.0, keep_nbest_models=1, use_tensorboard=False, use_matplotlib=False,
                           num_att_plot=0)


def train_cmd(config, data, out_dir, *extra):
    return [sys.executable, "-m", "espnet_speechllm.bin.speechllm_train", "--config", config,
            "--train_data_path_and_name_and_type", f"{data['train']}/wav.scp,speech,audio",
            "--train_data_path_and_name_and_type", f"{data['train']}/text,text,transcript",
            "--valid_data_path_and_name_and_type", f"{data['valid']}/wav.scp,speech,audio",
            "--valid_data_path_and_name_and_type", f"{data['valid']}/text,text,transcript",
            "--train_shape_file", f"{data['train']}/wav.scp", "--valid_shape_file", f"{data['valid']}/wav.scp",
            "--output_dir", str(out_dir), *map(str, extra)]


def one_thread_env():
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def test_ddp_two_cpu_processes_match_one_process(tiny_models, permuted_corpus, tmp_path, make_train_yaml):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(f"{tiny_models}/llm")
    assert len({len(tok(s, add_special_tokens=False).input_ids) for s in TRAIN}) == 1, "parity needs equal lengths"

    ddp_exp, single_exp = tmp_path / "ddp", tmp_path / "single"
    init = f"file://{tmp_path}/dist_init"
    # per-rank batch 1 x 2 ranks, and one process with the same global batch of 2, all three at once
    config = train_config(make_train_yaml, tiny_models, tmp_path / "train.yaml", 2)
    ddp = [subprocess.Popen(
        train_cmd(config, permuted_corpus, ddp_exp,
                  "--multiprocessing_distributed", "false", "--dist_backend", "gloo", "--dist_world_size", 2,
                  "--dist_rank", rank, "--dist_init_method", init),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=one_thread_env()) for rank in (0, 1)]
    single = subprocess.run(train_cmd(config, permuted_corpus, single_exp), capture_output=True, text=True,
                            env=one_thread_env())
    errs = [p.communicate(timeout=120)[1] for p in ddp]
    for p, err in zip(ddp, errs):
        assert p.returncode == 0, err[-3000:]
    assert single.returncode == 0, single.stderr[-3000:]

    # really distributed: ESPnet's log lines carry the rank ("[host:0/2]")
    assert ":0/2]" in errs[0], errs[0][-2000:]

    init_state = torch.load(ddp_exp / "1epoch.pth", map_location="cpu", weights_only=True)
    ddp_state = torch.load(ddp_exp / "2epoch.pth", map_location="cpu", weights_only=True)
    single_state = torch.load(single_exp / "2epoch.pth", map_location="cpu", weights_only=True)
    assert ddp_state.keys() == single_state.keys()
    trained = [k for k in ddp_state if "lora_" in k or k.startswith(("adapter.", "matching_loss."))]
    assert any(k.startswith("encoder.") for k in trained) and any(k.startswith("llm.") for k in trained)
    diff = max((ddp_state[k] - single_state[k]).abs().max().item() for k in ddp_state)
    moved = max((ddp_state[k] - init_state[k]).abs().max().item() for k in trained)
    # SGD (lr 0.1) moves the trained weights by ~2e-2 in epoch 2 (``moved``). The two runs do the same arithmetic
    # up to float32 summation order (batched vs. per-utterance matmuls, the gloo all-reduce): measured ~1.5e-8,
    # i.e. a few ulps of O(0.1-1) weights. 1e-6 leaves margin for other BLAS builds and is 1e4 x below any
    # semantic difference (another batch split, a gradient sum instead of mean) which changes the step itself.
    # (Adam would divide each gradient element by its running RMS and amplify the rounding noise of near-zero
    # elements to ~3e-6 after 4 steps: SGD keeps the comparison at rounding level.)
    assert moved > 5e-3, moved
    assert diff < 1e-6, (diff, moved)
    print(f"max |ddp - single| = {diff:.3g}; max weight change in epoch 2 = {moved:.3g}")

    # both runs logged the same losses and gradient norms, epoch by epoch (train and valid)
    def results(log):
        keep = {"loss", "loss_ce", "loss_match", "grad_norm", "acc"}
        out = []
        for line in log.splitlines():
            if "epoch results: [train] " in line:
                train, valid = line.split("epoch results: [train] ")[1].split(", [valid] ")
                for phase, text in (("train", train), ("valid", valid)):
                    out += [(phase, *kv.split("=")) for kv in text.split(", ") if kv.split("=")[0] in keep]
        return out

    assert len(results(errs[0])) == 2 * 9 and results(errs[0]) == results(single.stderr)


# ------------------------------------------------------------------------------------------------ DeepSpeed
def paper_shaped_llm_dir(tiny_models, tmp_path):
    from espnet_speechllm.utils.reference_configs import vicuna_7b_config

    llm_dir = tmp_path / "vicuna_shape"
    llm_dir.mkdir()
    for name in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy(f"{tiny_models}/llm/{name}", llm_dir / name)
    vicuna_7b_config().save_pretrained(llm_dir)
    return str(llm_dir)


def test_deepspeed_config_parses_and_builds_without_deepspeed(tiny_models, tmp_path):
    from espnet_speechllm.tasks.speechllm import SpeechLLMTask
    from espnet_speechllm.utils.reference_configs import HUBERT_LARGE_LL60K

    yaml_path = f"{CONF}/train_hubert_conv1dmlp_vicuna_full_deepspeed.yaml"
    # every key is an option of the task's parser (ESPnet rejects unknown keys of a --config file)
    args = SpeechLLMTask.get_parser().parse_args(["--config", yaml_path, "--output_dir", str(tmp_path / "exp")])
    assert args.use_deepspeed and args.llm_conf["finetune"] == "full"
    assert args.deepspeed_config == "conf/deepspeed_zero2.json"  # relative to the recipe dir, like every conf
    with open(f"{CONF}/deepspeed_zero2.json") as f:
        ds = json.load(f)
    assert ds["zero_optimization"]["stage"] == 2 and ds["torch_autocast"]["enabled"]
    assert "bf16" not in ds and "fp16" not in ds
    assert args.keep_nbest_models >= 2  # n=1 would symlink an <epoch>epoch.pth DeepSpeed never writes

    # the full-size system builds (meta device) from this YAML whether or not deepspeed is installed
    encoder_conf = dict(args.encoder_conf, hf_config=dict(model_type="hubert", **HUBERT_LARGE_LL60K))
    encoder_conf.pop("model_dir")
    build_args = argparse_namespace(args, encoder_conf=encoder_conf,
                                    llm_conf=dict(args.llm_conf, model_dir=paper_shaped_llm_dir(tiny_models, tmp_path),
                                                  random_init=True))
    with torch.device("meta"):
        model = SpeechLLMTask.build_model(build_args)
    llm_trainable = sum(p.numel() for p in model.llm.parameters() if p.requires_grad)
    assert 6.7e9 < llm_trainable < 6.8e9
    assert all(p.dtype == torch.float32 for p in model.parameters())  # what DeepSpeed's torch_autocast requires


def argparse_namespace(args, **override):
    return argparse.Namespace(**dict(vars(args), output_dir=None, **override))


def test_deepspeed_errors_are_clear(tmp_path, monkeypatch):
    from espnet_speechllm.utils import deepspeed_support as ds

    good = f"{CONF}/deepspeed_zero2.json"
    base = dict(use_deepspeed=True, deepspeed_config=good, ngpu=8, dist_world_size=None, dist_launcher=None,
                llm_conf=dict(weight_dtype="float32"))

    def err(**kw):
        with pytest.raises(ds.DeepSpeedConfigError) as e:
            ds.check_deepspeed_args(argparse.Namespace(**dict(base, **kw)))
        return str(e.value)

    ds.check_deepspeed_args(argparse.Namespace(**dict(base, use_deepspeed=False)))  # off: nothing to check
    monkeypatch.setattr(ds, "deepspeed_available", lambda: False)
    assert "deepspeed package is not installed" in err()
    monkeypatch.setattr(ds, "deepspeed_available", lambda: True)
    ds.check_deepspeed_args(argparse.Namespace(**base))
    assert "no such file" in err(deepspeed_config=str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "not valid JSON" in err(deepspeed_config=str(bad))
    assert "runs on CUDA" in err(ngpu=0)
    assert "silently fall back" in err(ngpu=1)
    ds.check_deepspeed_args(argparse.Namespace(**dict(base, ngpu=1, dist_launcher="slurm")))
    assert "needs float32 weights" in err(llm_conf=dict(weight_dtype="bfloat16"))
    for name, patch in (("bf16", {"bf16": {"enabled": True}}), ("zero3", {"zero_optimization": {"stage": 3}})):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(dict(json.load(open(good)), **patch)))
        msg = err(deepspeed_config=str(path))
        assert ("torch_autocast" in msg) if name == "bf16" else ("use stage 2" in msg)


def test_asking_for_deepspeed_without_it_fails_first_and_clearly(tmp_path):
    """Before any model is built or worker spawned (SpeechLLMTask.main runs check_deepspeed_args)."""
    from espnet_speechllm.utils.deepspeed_support import deepspeed_available

    if deepspeed_available():
        pytest.skip("deepspeed is installed here")
    recipe = os.path.dirname(CONF)
    p = subprocess.run([sys.executable, "-m", "espnet_speechllm.bin.speechllm_train",
                        "--config", "conf/train_hubert_conv1dmlp_vicuna_full_deepspeed.yaml", "--ngpu", "8",
                        "--output_dir", str(tmp_path / "exp")], cwd=recipe, capture_output=True, text=True)
    assert p.returncode != 0
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("espnet_speechllm.utils.deepspeed_support.DeepSpeedConfigError: --use_deepspeed true, "
                           "but the deepspeed package is not installed"), p.stderr[-2000:]
    assert not (tmp_path / "exp").exists()
