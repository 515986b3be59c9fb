#!/usr/bin/env python3
"""Make small real foundation models in HF format: a Llama-architecture LLM with a sentencepiece tokenizer
and a HuBERT-architecture speech encoder, saved with ``save_pretrained``.

They load back through exactly the code path used for vicuna-7b-v1.5 and hubert-large-ll60k
(``AutoTokenizer``/``AutoModelForCausalLM``/``AutoModel.from_pretrained`` on a local dir). Optionally
pretrains them: the LLM on a text pool (causal LM with stretched copies, pretrain/text_lm.py), the encoder with
CTC on the LLM's tokens or on characters (pretrain/ctc_encoder.py). The LLM and the encoder train at once, one
core each. ``build_info.json`` (inputs' sha256, wall time) and ``SHA256SUMS`` describe the result.

    python -m espnet_speechllm.bin.make_tiny_models --output_dir exp/pretrained --text data/local/lm_text.txt \\
        [--pretrain_data data/pretrain_encoder] [--config conf/tiny_models.yaml]

Writes ``<output_dir>/{llm,encoder}``, a done-marker per model (``llm.done``, ``encoder.done``: the settings
and inputs it was made from) and ``<output_dir>/tiny_models.done``. With --force true a rebuild retrains only
the models whose settings or inputs changed; delete <output_dir> to rebuild both.
"""
import argparse
import copy
import hashlib
import importlib.metadata
import json
import logging
import multiprocessing
import os
import random
import shutil
import time
from concurrent.futures import ProcessPoolExecutor

import torch
import yaml
from transformers import AutoTokenizer, HubertConfig, HubertForCTC, LlamaConfig, LlamaForCausalLM

from espnet_speechllm.llm.prompt import DEFAULT_TEMPLATE
from espnet_speechllm.pretrain.ctc_encoder import CharUnits, TokenUnits, greedy_ctc_cer, load_ctc_data, pretrain_ctc
from espnet_speechllm.pretrain.text_lm import PretrainSampler, copy_accuracy, perplexity, pretrain_causal_lm
from espnet_speechllm.pretrain.tokenizer import train_llama_tokenizer
from espnet_speechllm.utils.cli import add_force, make_parser, setup_logging

logger = logging.getLogger("make_tiny_models")

DEFAULTS = {
    "seed": 0,
    "tokenizer": {"vocab_size": 384},
    "llm": {
        "hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 4, "max_position_embeddings": 1024, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
    },
    # The real HuBERT conv front-end (320x downsampling, 50 Hz frames) with narrow layers.
    "encoder": {
        "hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 2, "num_attention_heads": 4,
        "conv_dim": [64, 64, 64, 64, 64, 64, 64], "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
        "conv_stride": [5, 2, 2, 2, 2, 2, 2], "num_conv_pos_embeddings": 32, "num_conv_pos_embedding_groups": 4,
        "feat_extract_norm": "layer", "do_stable_layer_norm": True, "mask_time_prob": 0.0, "layerdrop": 0.0,
        # No dropout: CTC pretraining on a CPU budget underfits (greedy CER on training utterances equals the
        # held-out one), and dropout makes every step of stage 9's encoder dearer.
        "hidden_dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0, "feat_proj_dropout": 0.0,
        "final_dropout": 0.0,
    },
    "pretrain": {
        # LLM: sample kinds and their shares (pretrain/text_lm.py explains them).
        "llm_steps": 0, "llm_batch_size": 32, "llm_lr": 3.0e-3,
        "llm_mix": {"plain": 0.25, "copy": 0.25, "random_copy": 0.5}, "llm_copy_template": DEFAULT_TEMPLATE,
        "llm_max_repeat": 6, "llm_random_words": [3, 12], "llm_curriculum_steps": 0,
        "llm_heldout_sentences": 200,   # held out of the text pool: copy accuracy and perplexity
        # LLM phase 2 (llm_robust_steps > 0): copies whose prefix has fillers between the tokens and noisy
        # embeddings, the way an adapter's outputs look (pretrain/text_lm.py); its own lr, one-cycle again.
        "llm_robust_steps": 0, "llm_robust_lr": 1.0e-3, "llm_robust_max_blank": 3, "llm_robust_max_repeat": 3,
        "llm_robust_prefix_noise": 2.0,
        "llm_robust_clean_share": 0.0,  # share of phase-2 copies in phase 1's layout (keeps the plain copy skill)
        # Encoder: CTC on the LLM's tokens ("llm_tokens") or on characters ("char").
        "encoder_steps": 0, "encoder_batch_size": 8, "encoder_lr": 2.0e-3, "encoder_max_utts": 4000,
        "encoder_units": "llm_tokens", "encoder_speeds": [0.9, 1.0, 1.1], "encoder_noise_prob": 0.3,
        "encoder_freeze_conv_after": 0.25, "encoder_heldout_utts": 50,
        "encoder_token_steps": 0,       # then this many steps on the LLM's tokens (build_encoder explains)
        "eval_every": 0,                # log copy accuracy / CER every N steps while training (0: at the end)
    },
}


def merge_config(user: dict) -> dict:
    """DEFAULTS updated by ``user``; unknown sections or keys are errors naming them."""
    config = copy.deepcopy(DEFAULTS)
    for section, values in (user or {}).items():
        if section not in config:
            raise ValueError(f"unknown section {section!r}; allowed: {sorted(config)}")
        if not isinstance(config[section], dict):
            config[section] = values
            continue
        unknown = sorted(set(values or {}) - set(config[section]))
        if unknown:
            raise ValueError(f"{section}: unknown key(s) {unknown}; allowed: {sorted(config[section])}")
        config[section].update(values or {})
    if config["pretrain"]["encoder_units"] not in ("char", "llm_tokens"):
        raise ValueError(f"pretrain.encoder_units must be char or llm_tokens, got {config['pretrain']['encoder_units']!r}")
    return config


def read_sentences(path: str):
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def _write_report(out_dir: str, report: dict) -> None:
    with open(os.path.join(out_dir, "pretrain_report.json"), "w") as f:
        json.dump(report, f, indent=2)


def build_llm(config: dict, text: str, out_dir: str) -> dict:
    """Pretrains the LLM of ``out_dir`` (its tokenizer is already there) and saves it; returns its report."""
    tokenizer = AutoTokenizer.from_pretrained(out_dir)  # the same call the training code makes
    llm_config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id, **config["llm"])
    model = LlamaForCausalLM(llm_config)
    pre = config["pretrain"]
    report = {}
    if pre["llm_steps"] > 0:
        sentences = read_sentences(text)
        n_held = min(pre["llm_heldout_sentences"], len(sentences) // 10)
        held, train = sentences[:n_held], sentences[n_held:]
        rng = random.Random(config["seed"])
        layout = dict(max_repeat=pre["llm_max_repeat"], random_words=tuple(pre["llm_random_words"]))
        sampler = PretrainSampler(tokenizer, train, rng, pre["llm_mix"], pre["llm_copy_template"], **layout)

        def copy_probe(seed_offset: int, train_sampler: PretrainSampler, **kwargs) -> PretrainSampler:
            """Copies of held-out sentences, and of random strings over the training vocabulary."""
            probe_ = PretrainSampler(tokenizer, held or train, random.Random(config["seed"] + seed_offset),
                                     {"copy": 1.0}, pre["llm_copy_template"], **kwargs)
            probe_.word_ids = train_sampler.word_ids
            return probe_

        probe = copy_probe(1, sampler, **layout)
        history, robust_probes = [], []

        def evaluate(m, step):
            history.append({"step": step, "copy_grammar": copy_accuracy(m, probe, 100),
                            "copy_random": copy_accuracy(m, probe, 100, random_strings=True)})
            if robust_probes:  # phase 2: also the adapter layout (fillers, noise level 1)
                history[-1]["copy_fillers_noise1"] = copy_accuracy(m, robust_probes[0], 100, prefix_noise=1.0)
            logger.info(f"LLM pretraining step {step}: copy accuracy " + ", ".join(
                f"{k} {v:.4f}" for k, v in history[-1].items() if k != "step"))

        report["final_loss"] = pretrain_causal_lm(model, sampler, pre["llm_steps"], pre["llm_batch_size"],
                                                  pre["llm_lr"], pre["llm_curriculum_steps"], pre["eval_every"],
                                                  evaluate)
        if pre["llm_robust_steps"] > 0:
            robust = dict(max_repeat=pre["llm_robust_max_repeat"], random_words=tuple(pre["llm_random_words"]),
                          max_blank=pre["llm_robust_max_blank"])
            sampler = PretrainSampler(tokenizer, train, rng, pre["llm_mix"], pre["llm_copy_template"], **robust,
                                      clean_share=pre["llm_robust_clean_share"], clean_max_repeat=pre["llm_max_repeat"])
            robust_probe = copy_probe(2, sampler, **robust)
            robust_probes.append(robust_probe)
            report["final_loss"] = pretrain_causal_lm(model, sampler, pre["llm_robust_steps"], pre["llm_batch_size"],
                                                      pre["llm_robust_lr"], 0, pre["eval_every"], evaluate,
                                                      prefix_noise=pre["llm_robust_prefix_noise"], seed=config["seed"])
            # Level 1: prefix embeddings at cosine ~0.7 to the tokens', with fillers between the tokens.
            report["copy_token_accuracy_fillers_noise1_heldout_sentences"] = copy_accuracy(
                model, robust_probe, 500, prefix_noise=1.0)
        report["heldout_sentences"] = n_held
        report["copy_token_accuracy_heldout_sentences"] = copy_accuracy(model, probe, 500)
        report["copy_token_accuracy_random_strings"] = copy_accuracy(model, probe, 500, random_strings=True)
        if n_held:
            report["heldout_perplexity"] = perplexity(model, tokenizer, held)
        report["history"] = history
        logger.info("LLM pretraining: stretched-copy token accuracy %.4f (held-out sentences), %.4f (random word "
                    "strings); held-out perplexity %s", report["copy_token_accuracy_heldout_sentences"],
                    report["copy_token_accuracy_random_strings"], f"{report.get('heldout_perplexity', 0):.2f}")
    model.save_pretrained(out_dir)
    _write_report(out_dir, report)
    return report


def build_encoder(config: dict, pretrain_data: str, out_dir: str, tokenizer_dir: str) -> dict:
    """Pretrains a HuBERT-architecture encoder with CTC and saves the bare encoder; returns its report.

    Phase 1: ``encoder_steps`` on ``encoder_units``. Phase 2 (``encoder_token_steps`` > 0): a new CTC head on
    the LLM's tokens, on top of the phase-1 encoder, with the waveform CNN frozen: characters are learnt fast
    from scratch, and the tokens on top of them make the last layer separate the units the LLM reads.
    """
    pre = config["pretrain"]
    audio, texts = [], []
    if pretrain_data and pre["encoder_steps"] + pre["encoder_token_steps"] > 0:
        audio, texts = load_ctc_data(pretrain_data)
        audio, texts = audio[: pre["encoder_max_utts"]], texts[: pre["encoder_max_utts"]]
    token_units = TokenUnits(AutoTokenizer.from_pretrained(tokenizer_dir))
    units = token_units if pre["encoder_units"] == "llm_tokens" else CharUnits(texts)
    n_held = min(pre["encoder_heldout_utts"], len(texts) // 10)
    held_audio, held_texts = audio[:n_held], texts[:n_held]
    train = dict(audio=audio[n_held:], texts=texts[n_held:], batch_size=pre["encoder_batch_size"], lr=pre["encoder_lr"],
                 seed=config["seed"], speeds=pre["encoder_speeds"], noise_prob=pre["encoder_noise_prob"])
    report = {"units": pre["encoder_units"], "heldout_utts": n_held, "history": []}

    def ctc_model_for(units_, hubert=None):
        model = HubertForCTC(HubertConfig(vocab_size=len(units_), pad_token_id=0, bos_token_id=None, eos_token_id=None,
                                          ctc_loss_reduction="mean", **config["encoder"]))
        if hubert is not None:
            model.hubert.load_state_dict(hubert.state_dict())
        return model

    def run_phase(model, units_, steps, freeze_conv_after, name):
        def evaluate(m, step):
            cer = greedy_ctc_cer(m, held_audio, held_texts, units_)
            report["history"].append({"phase": name, "step": step, "heldout_greedy_ctc_cer": cer})
            logger.info(f"encoder pretraining ({name}) step {step}: greedy CTC CER {100 * cer:.2f}%")

        pretrain_ctc(model, train["audio"], train["texts"], units_, steps, train["batch_size"], train["lr"],
                     seed=train["seed"], speeds=train["speeds"], noise_prob=train["noise_prob"],
                     freeze_conv_after=freeze_conv_after, eval_every=pre["eval_every"] if n_held else 0,
                     evaluate=evaluate)
        if n_held:
            report[f"heldout_greedy_ctc_cer_{name}"] = greedy_ctc_cer(model, held_audio, held_texts, units_)
            logger.info(f"encoder pretraining ({name}): greedy CTC CER on {n_held} held-out utterances = "
                        f"{100 * report[f'heldout_greedy_ctc_cer_{name}']:.2f}%")

    ctc_model = ctc_model_for(units)
    if texts and pre["encoder_steps"] > 0:
        run_phase(ctc_model, units, pre["encoder_steps"], pre["encoder_freeze_conv_after"], pre["encoder_units"])
    if texts and pre["encoder_token_steps"] > 0:
        ctc_model = ctc_model_for(token_units, ctc_model.hubert)
        units = token_units
        report["units"] = "llm_tokens"
        run_phase(ctc_model, units, pre["encoder_token_steps"], 0.0, "llm_tokens")
    if n_held:
        report["heldout_greedy_ctc_cer"] = report[f"heldout_greedy_ctc_cer_{report['units']}"]
    # Save the bare encoder (HubertModel), the layout of facebook/hubert-large-ll60k.
    ctc_model.hubert.save_pretrained(out_dir)
    with open(os.path.join(out_dir, "ctc_vocab.json"), "w") as f:
        json.dump(units.vocab, f)
    _write_report(out_dir, report)
    return report


def _build_one(kind: str, config: dict, source: str, out_dir: str, tokenizer_dir: str, threads: int) -> float:
    """Worker: builds the LLM or the encoder with its own thread count; returns its wall time."""
    setup_logging()
    torch.set_num_threads(threads)
    torch.manual_seed(config["seed"])
    t0 = time.time()
    if kind == "llm":
        build_llm(config, source, out_dir)
    else:
        build_encoder(config, source, out_dir, tokenizer_dir)
    return time.time() - t0


def part_settings(config: dict, part: str, inputs: dict) -> dict:
    """What one model is made from: the config sections and pretraining keys it reads, and its input files.

    A part whose settings are unchanged is kept by a rebuild, so editing the encoder's steps retrains the encoder
    only. Both parts read the tokenizer (the encoder's CTC units can be its tokens), hence the text pool.
    """
    pretrain = {k: v for k, v in config["pretrain"].items() if k.startswith(f"{part}_") or k == "eval_every"}
    files = {k: v for k, v in inputs.items() if k == "text" or (part == "encoder" and k.startswith("pretrain_"))}
    return {"config": {"seed": config["seed"], "tokenizer": config["tokenizer"], part: config[part],
                       "pretrain": pretrain}, "inputs": files}


def read_json(path: str):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def tokenizer_matches_encoder(llm_dir: str, enc_dir: str) -> bool:
    """A kept encoder trained on the LLM's tokens needs the very same vocabulary in the same order."""
    if (read_json(os.path.join(enc_dir, "pretrain_report.json")) or {}).get("units") != "llm_tokens":
        return True
    vocab = read_json(os.path.join(enc_dir, "ctc_vocab.json")) or []
    tokenizer = AutoTokenizer.from_pretrained(llm_dir)
    return vocab[1:] == tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_hashes(args) -> dict:
    """sha256 of every input file: the config, the text pool and the encoder pretraining lists."""
    inputs = {"config": args.config, "text": args.text}
    if args.pretrain_data:
        inputs.update(pretrain_wav_scp=f"{args.pretrain_data}/wav.scp", pretrain_text=f"{args.pretrain_data}/text")
    return {k: sha256_file(v) for k, v in inputs.items() if v and os.path.isfile(v)}


def write_build_info(args, inputs: dict, times: dict, rebuilt: list, wall_time: float) -> None:
    """``build_info.json`` (what the models were made from, and how long it took) and ``SHA256SUMS`` (every
    file, ``sha256sum -c`` format): stage 7 checks a shipped copy against both before installing it.

    ``llm_time_s``/``encoder_time_s`` are each model's own build time (a kept model's from the run that built it);
    ``from_scratch_time_s`` is what a build of both takes on this machine (they train at once); ``wall_time_s``
    is this run's."""
    info = {
        "command": "python -m espnet_speechllm.bin.make_tiny_models " + " ".join(
            f"--{k} {v}" for k, v in (("output_dir", args.output_dir), ("text", args.text),
                                      ("pretrain_data", args.pretrain_data), ("config", args.config)) if v),
        "sha256": inputs,
        "from_scratch_time_s": round(max(times.values()), 1), "wall_time_s": round(wall_time, 1),
        "llm_time_s": round(times["llm"], 1), "encoder_time_s": round(times["encoder"], 1), "rebuilt": rebuilt,
        "cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "torch": torch.__version__,
        "transformers": importlib.metadata.version("transformers"),
    }
    with open(os.path.join(args.output_dir, "build_info.json"), "w") as f:
        json.dump(info, f, indent=2)
    files = sorted(os.path.relpath(os.path.join(root, name), args.output_dir)
                   for root, _, names in os.walk(args.output_dir) for name in names
                   if name not in ("SHA256SUMS", "tiny_models.done", "llm.done", "encoder.done"))
    with open(os.path.join(args.output_dir, "SHA256SUMS"), "w") as f:
        f.writelines(f"{sha256_file(os.path.join(args.output_dir, name))}  {name}\n" for name in files)


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument("--output_dir", required=True, help="writes <dir>/llm and <dir>/encoder")
    parser.add_argument("--text", required=True, help="text pool, one sentence per line (tokenizer + LLM pretraining)")
    parser.add_argument("--pretrain_data", default=None, help="data dir (wav.scp, text) for encoder CTC pretraining")
    parser.add_argument("--config", default=None, help="YAML overriding the defaults: sections " + ", ".join(DEFAULTS))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="CPU threads in all (default: every core); two models that train at once get half each")
    add_force(parser, "rebuild the models whose settings or inputs changed (a stop without it)")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    done = os.path.join(args.output_dir, "tiny_models.done")
    user = {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            user = yaml.safe_load(f) or {}
    config = merge_config(user)
    inputs = input_hashes(args)
    # The done-marker records what the models were made from: other inputs are a stop, not a silent reuse.
    settings = json.dumps({"config": config, "inputs": inputs}, sort_keys=True)
    if os.path.exists(done) and not args.force:
        with open(done, encoding="utf-8") as f:
            if f.read() == settings:
                logger.info(f"{done}: models already built from these inputs, nothing to do (--force true rebuilds)")
                return
        raise SystemExit(f"{args.output_dir} was built from another config or other data ({done}); "
                         "rerun with --force true to rebuild the models whose inputs changed")
    dirs = {part: os.path.join(args.output_dir, part) for part in ("llm", "encoder")}
    markers = {part: os.path.join(args.output_dir, f"{part}.done") for part in dirs}
    wanted = {part: part_settings(config, part, inputs) for part in dirs}
    times, rebuild = {}, []
    for part, path in dirs.items():
        marker = read_json(markers[part])
        if marker is not None and marker["settings"] == wanted[part] and os.path.isdir(path):
            times[part] = marker["time_s"]
            logger.info(f"{path}: built from the same settings and inputs ({markers[part]}); kept")
            continue
        if os.path.exists(path):
            if not args.force:
                raise SystemExit(f"{path} exists but was not built from these inputs (an interrupted build?); "
                                 "rerun with --force true")
            shutil.rmtree(path)
        if os.path.exists(markers[part]):
            os.remove(markers[part])
        rebuild.append(part)
    t0 = time.time()
    if "llm" in rebuild:
        train_llama_tokenizer(args.text, dirs["llm"], config["tokenizer"]["vocab_size"])
        AutoTokenizer.from_pretrained(dirs["llm"]).save_pretrained(dirs["llm"])
        if "encoder" not in rebuild and not tokenizer_matches_encoder(dirs["llm"], dirs["encoder"]):
            logger.info(f"{dirs['encoder']}: its CTC units are the old tokenizer's; rebuilding it too")
            shutil.rmtree(dirs["encoder"])
            os.remove(markers["encoder"])
            rebuild.append("encoder")
    # Two models train at once, one core each: small models use a second thread poorly.
    cores = max(1, args.threads)
    sources = {"llm": args.text, "encoder": args.pretrain_data}
    if len(rebuild) == 2 and cores >= 2:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(2, mp_context=ctx) as pool:
            futures = {k: pool.submit(_build_one, k, config, sources[k], dirs[k], dirs["llm"], cores // 2)
                       for k in rebuild}
            built = {k: f.result() for k, f in futures.items()}
    else:
        built = {k: _build_one(k, config, sources[k], dirs[k], dirs["llm"], cores) for k in rebuild}
    for part, seconds in built.items():
        with open(markers[part], "w", encoding="utf-8") as f:
            json.dump({"settings": wanted[part], "time_s": round(seconds, 1)}, f, indent=2, sort_keys=True)
    times.update(built)
    with open(os.path.join(args.output_dir, "tiny_models.yaml"), "w") as f:
        yaml.safe_dump(config, f)
    write_build_info(args, inputs, times, rebuild, time.time() - t0)
    with open(done, "w", encoding="utf-8") as f:
        f.write(settings)
    for part in dirs:
        logger.info(f"{dirs[part]}: " + (f"built in {times[part]:.0f} s" if part in built else "kept"))
    logger.info(f"wrote {args.output_dir}/{{llm,encoder}} in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
