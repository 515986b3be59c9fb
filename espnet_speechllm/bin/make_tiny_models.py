#!/usr/bin/env python3
"""Make small real foundation models in HF format: a Llama-architecture LLM with a sentencepiece tokenizer
and a HuBERT-architecture speech encoder, saved with ``save_pretrained``.

They load back through exactly the code path used for vicuna-7b-v1.5 and hubert-large-ll60k
(``AutoTokenizer``/``AutoModelForCausalLM``/``AutoModel.from_pretrained`` on a local dir). Optionally
pretrains them: the LLM on a text pool (causal LM), the encoder with CTC on characters.

    python -m espnet_speechllm.bin.make_tiny_models --output_dir exp/pretrained --text data/local/lm_text.txt \\
        [--pretrain_data data/pretrain_encoder] [--config conf/tiny_models.yaml]

Writes ``<output_dir>/{llm,encoder}`` and ``<output_dir>/tiny_models.done``.
"""
import argparse
import copy
import json
import logging
import os
import random
import shutil
import time

import numpy as np
import torch
import yaml
from transformers import AutoTokenizer, HubertConfig, HubertForCTC, LlamaConfig, LlamaForCausalLM

from espnet_speechllm.llm.prompt import DEFAULT_TEMPLATE
from espnet_speechllm.pretrain.ctc_encoder import char_vocab, greedy_ctc_cer, load_ctc_data, pretrain_ctc
from espnet_speechllm.pretrain.text_lm import PretrainSampler, copy_accuracy, pretrain_causal_lm
from espnet_speechllm.pretrain.tokenizer import train_llama_tokenizer

from espnet_speechllm.utils.cli import make_parser, setup_logging

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
    },
    "pretrain": {
        "llm_steps": 0, "llm_batch_size": 32, "llm_lr": 3.0e-3,
        # Share of stretched-copy samples in the ASR prompt layout (pretrain/text_lm.py explains why).
        "llm_copy_fraction": 0.0, "llm_copy_template": DEFAULT_TEMPLATE,
        "encoder_steps": 0, "encoder_batch_size": 8, "encoder_lr": 1.0e-3, "encoder_max_utts": 4000,
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
    return config


def read_sentences(path: str):
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def build_llm(config: dict, text: str, out_dir: str) -> None:
    train_llama_tokenizer(text, out_dir, config["tokenizer"]["vocab_size"])
    tokenizer = AutoTokenizer.from_pretrained(out_dir)  # the same call the training code makes
    llm_config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id, **config["llm"])
    model = LlamaForCausalLM(llm_config)
    pre = config["pretrain"]
    report = {}
    if pre["llm_steps"] > 0:
        sentences = read_sentences(text)
        report["final_loss"] = pretrain_causal_lm(
            model, tokenizer, sentences, pre["llm_steps"], pre["llm_batch_size"], pre["llm_lr"], seed=config["seed"],
            copy_fraction=pre["llm_copy_fraction"], copy_template=pre["llm_copy_template"],
        )
        if pre["llm_copy_fraction"] > 0:
            sampler = PretrainSampler(tokenizer, sentences, random.Random(config["seed"] + 1), 1.0,
                                      pre["llm_copy_template"])
            report["copy_token_accuracy"] = copy_accuracy(model, sampler)
            logger.info(f"LLM pretraining: stretched-copy token accuracy {report['copy_token_accuracy']:.3f}")
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    with open(os.path.join(out_dir, "pretrain_report.json"), "w") as f:
        json.dump(report, f, indent=2)


def build_encoder(config: dict, pretrain_data: str, out_dir: str) -> None:
    steps = config["pretrain"]["encoder_steps"]
    audio, texts = [], []
    if pretrain_data and steps > 0:
        audio, texts = load_ctc_data(pretrain_data)
        n = config["pretrain"]["encoder_max_utts"]
        audio, texts = audio[:n], texts[:n]
    vocab = char_vocab(texts) if texts else ["<blank>"]
    enc_config = HubertConfig(vocab_size=len(vocab), pad_token_id=0, bos_token_id=None, eos_token_id=None,
                              ctc_loss_reduction="mean", **config["encoder"])
    ctc_model = HubertForCTC(enc_config)
    report = {}
    if texts:
        # Hold out a few utterances to report how well the encoder transcribes (greedy CTC CER).
        n_held = min(50, len(texts) // 10)
        held_audio, held_texts = audio[:n_held], texts[:n_held]
        pretrain_ctc(ctc_model, audio[n_held:], texts[n_held:], vocab, steps, config["pretrain"]["encoder_batch_size"],
                     config["pretrain"]["encoder_lr"], seed=config["seed"])
        if n_held:
            report["heldout_utts"] = n_held
            report["heldout_greedy_ctc_cer"] = greedy_ctc_cer(ctc_model, held_audio, held_texts, vocab)
            logger.info(f"encoder pretraining: greedy CTC CER on {n_held} held-out utterances = "
                        f"{100 * report['heldout_greedy_ctc_cer']:.1f}%")
    # Save the bare encoder (HubertModel), the layout of facebook/hubert-large-ll60k.
    ctc_model.hubert.save_pretrained(out_dir)
    with open(os.path.join(out_dir, "ctc_vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(out_dir, "pretrain_report.json"), "w") as f:
        json.dump(report, f, indent=2)


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument("--output_dir", required=True, help="writes <dir>/llm and <dir>/encoder")
    parser.add_argument("--text", required=True, help="text pool, one sentence per line (tokenizer + LLM pretraining)")
    parser.add_argument("--pretrain_data", default=None, help="data dir (wav.scp, text) for encoder CTC pretraining")
    parser.add_argument("--config", default=None, help="YAML overriding the defaults: sections " + ", ".join(DEFAULTS))
    parser.add_argument("--force", action="store_true", help="rebuild even if <output_dir> is complete")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    done = os.path.join(args.output_dir, "tiny_models.done")
    if os.path.exists(done) and not args.force:
        logger.info(f"{done} exists: models already built, nothing to do (use --force to rebuild)")
        return
    user = {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            user = yaml.safe_load(f) or {}
    config = merge_config(user)
    random.seed(config["seed"])
    np.random.seed(config["seed"])
    torch.manual_seed(config["seed"])
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for sub in ("llm", "encoder"):
        path = os.path.join(args.output_dir, sub)
        if os.path.exists(path):
            if not args.force:
                raise SystemExit(f"{path} exists but {done} does not (an interrupted build?); rerun with --force")
            shutil.rmtree(path)
    t0 = time.time()
    build_llm(config, args.text, os.path.join(args.output_dir, "llm"))
    build_encoder(config, args.pretrain_data, os.path.join(args.output_dir, "encoder"))
    with open(os.path.join(args.output_dir, "tiny_models.yaml"), "w") as f:
        yaml.safe_dump(config, f)
    open(done, "w").close()
    logger.info(f"wrote {args.output_dir}/{{llm,encoder}} in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
