#!/usr/bin/env python3
"""How fast can the adapter and LoRA couple a given encoder to a given LLM? Stand-ins side by side, in one run.

Stage 9 of the synth recipe takes minutes per epoch on 2 CPU cores, most of it in the encoder. This probe
answers "which stand-in foundation models couple faster" in a few minutes per pair: it runs each FROZEN
encoder once over a training subset and the dev set, then trains only the adapter, the matching-loss
cross-attention and the LLM's LoRA (the training YAML's settings otherwise) on the cached frames, and prints
per pair and every ``--eval_every`` steps: valid token accuracy, ``acc_mismatched`` (speech swapped within the
batch: what the text prior alone gives) and, at the end, greedy WER on the dev set. A first table gives each
LLM's teacher-forced copy accuracy on stretched copies whose prefix embeddings carry noise (level 1 = cosine
~0.7 to the clean embeddings): how well its copy skill reads inexact adapter outputs.

    cd egs2/synth_llm/asr1
    python ../../../benchmark/coupling_probe.py --encoder_dirs exp/pretrained/encoder \\
        --llm_dirs exp/pretrained/llm,/path/to/other/llm --steps 1000

A frozen encoder and clean (unaugmented) training audio make the figures optimistic about speed and
pessimistic about overfitting compared with stage 9 itself (LoRA on the encoder, speed and noise
augmentation); use them to rank stand-ins, not to predict the recipe's WER.
"""
import argparse
import itertools
import random
import time
from typing import Dict, List, Tuple

import jiwer
import torch
import yaml
from espnet2.schedulers.warmup_lr import WarmupLR

from espnet_speechllm.data.audio import SAMPLE_RATE, load_audio
from espnet_speechllm.data.kaldi_dir import read_kaldi_file
from espnet_speechllm.encoder.dump import length_batches
from espnet_speechllm.llm.hf_causal_lm import load_tokenizer
from espnet_speechllm.llm.prompt import DEFAULT_TEMPLATE
from espnet_speechllm.loss.adapter_ctc import greedy_ctc_ids
from espnet_speechllm.pretrain.text_lm import PretrainSampler, copy_accuracy
from espnet_speechllm.tasks.speechllm import SpeechLLMTask


def load_set(data_dir: str, n: int, seed: int) -> List[Tuple[str, object, str]]:
    """(utt_id, waveform, transcript) of ``n`` utterances of a dumped data dir (all with n <= 0)."""
    scp, text = read_kaldi_file(f"{data_dir}/wav.scp"), read_kaldi_file(f"{data_dir}/text", allow_empty_value=True)
    ids = sorted(u for u in scp if text.get(u))  # speech only: non-speech has nothing to read
    random.Random(seed).shuffle(ids)
    return [(u, load_audio(u, scp[u]), text[u]) for u in (ids[:n] if n > 0 else ids)]


@torch.no_grad()
def encode(encoder, utts, batch_seconds: float = 100.0):
    """Frozen-encoder frames (T, D) and transcript per utterance, in length-sorted batches."""
    by_id = {u[0]: u for u in utts}
    out = []
    for ids in length_batches({u: len(w) for u, w, _ in utts}, int(batch_seconds * SAMPLE_RATE)):
        batch = [by_id[u] for u in ids]
        wav = [torch.as_tensor(w) for _, w, _ in batch]
        hidden, lengths = encoder(torch.nn.utils.rnn.pad_sequence(wav, batch_first=True),
                                  torch.tensor([len(w) for w in wav]))
        out += [(hidden[j, : lengths[j]].clone(), text) for j, (_, _, text) in enumerate(batch)]
    return out


class CachedFrames(torch.nn.Module):
    """Stands in for the encoder: the batch already holds its frames."""

    def forward(self, frames, lengths):
        return frames, lengths


def build(train_config: str, encoder_dir: str, llm_dir: str, frozen_encoder: bool):
    with open(train_config, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    conf["encoder_conf"]["model_dir"], conf["llm_conf"]["model_dir"] = encoder_dir, llm_dir
    if frozen_encoder:
        conf["encoder_conf"]["finetune"] = "frozen"
        conf["encoder_conf"].pop("precomputed_frontend", None)  # the probe runs the encoder on audio, once
    args = argparse.Namespace(**conf)
    args.output_dir = None
    return SpeechLLMTask.build_model(args), conf


def collate(items, tokenizer):
    frames = torch.nn.utils.rnn.pad_sequence([h for h, _ in items], batch_first=True)
    ids = [tokenizer(t, add_special_tokens=False).input_ids for _, t in items]
    return (frames, torch.tensor([h.size(0) for h, _ in items]),
            torch.nn.utils.rnn.pad_sequence([torch.tensor(i) for i in ids], batch_first=True),
            torch.tensor([len(i) for i in ids]))


@torch.no_grad()
def valid_accuracy(model, dev, tokenizer) -> Tuple[float, float]:
    model.eval()
    stats = [model(*collate(dev[i : i + 50], tokenizer))[1] for i in range(0, len(dev), 50)]
    model.train()
    return (sum(float(s["acc"]) for s in stats) / len(stats),
            sum(float(s["acc_mismatched"]) for s in stats) / len(stats))


@torch.no_grad()
def greedy_wer(model, dev, tokenizer) -> float:
    model.eval()
    hyps = []
    for i in range(0, len(dev), 25):
        frames, lengths, _, _ = collate(dev[i : i + 25], tokenizer)
        prefix, mask = model.build_prefix(*model.adapter(frames, lengths))
        out = model.llm.model.generate(inputs_embeds=prefix, attention_mask=mask, max_new_tokens=48,
                                       do_sample=False, eos_token_id=model.llm.eos_token_id,
                                       pad_token_id=model.llm.eos_token_id)
        hyps += [tokenizer.decode(o, skip_special_tokens=True).strip() for o in out]
    model.train()
    return 100 * jiwer.wer([t for _, t in dev], hyps)


@torch.no_grad()
def adapter_ctc_wer(model, dev, tokenizer) -> float:
    """Greedy CTC WER of the adapter frames read against the LLM's embedding table (adapter_ctc_conf only)."""
    model.eval()
    frames, lengths, _, _ = collate(dev, tokenizer)
    emb, emb_lengths = model.adapter(frames, lengths)
    best = model.adapter_ctc.logits(emb, model.llm.embedding_table()).argmax(-1)  # (B, T')
    hyps = [tokenizer.decode(greedy_ctc_ids(row[:n], model.adapter_ctc.blank_id)).strip()
            for row, n in zip(best, emb_lengths)]
    model.train()
    return 100 * jiwer.wer([t for _, t in dev], hyps)


def train_pair(args, train_config: str, encoder_dir: str, llm_dir: str, train, dev) -> Dict[str, float]:
    torch.manual_seed(args.seed)
    model, conf = build(train_config, encoder_dir, llm_dir, frozen_encoder=True)
    model.encoder = CachedFrames()
    tokenizer = load_tokenizer(llm_dir)
    # The recipe's optimizer (lr_multipliers parameter groups) and ESPnet's warmuplr, over --warmup steps.
    opt = SpeechLLMTask.build_optimizers(argparse.Namespace(**conf), model)[0]
    scheduler = WarmupLR(opt, warmup_steps=args.warmup)
    rng = random.Random(args.seed)
    order: List[int] = []
    t0 = time.time()
    model.train()
    for step in range(1, args.steps + 1):
        if len(order) < args.batch_size:
            order = list(range(len(train)))
            rng.shuffle(order)
        batch = [train[order.pop()] for _ in range(args.batch_size)]
        loss = model(*collate(batch, tokenizer))[0]
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(conf.get("grad_clip", 5.0)))
        opt.step()
        scheduler.step()
        if step % args.eval_every == 0 or step == args.steps:
            acc, mismatched = valid_accuracy(model, dev, tokenizer)
            print(f"  step {step:5d} ({time.time() - t0:5.0f} s): valid acc {acc:.3f}, acc_mismatched "
                  f"{mismatched:.3f}", flush=True)
    dev = dev[: args.decode_utts]
    ctc_wer = adapter_ctc_wer(model, dev, tokenizer) if model.adapter_ctc is not None else float("nan")
    return {"acc": acc, "acc_mismatched": mismatched, "wer": greedy_wer(model, dev, tokenizer),
            "ctc_wer": ctc_wer, "train_s": time.time() - t0}


def noisy_copy_table(llm_dirs: List[str], sentences: List[str], levels: List[float]) -> None:
    from transformers import AutoModelForCausalLM

    print("copy accuracy on stretched copies of dev sentences (fillers between tokens), by prefix noise level")
    print("| LLM | " + " | ".join(f"noise {lv}" for lv in levels) + " |")
    print("|---|" + "---|" * len(levels))
    for llm_dir in llm_dirs:
        tokenizer = load_tokenizer(llm_dir)
        model = AutoModelForCausalLM.from_pretrained(llm_dir).eval()
        probe = PretrainSampler(tokenizer, sentences, random.Random(1), {"copy": 1.0},
                                DEFAULT_TEMPLATE, max_repeat=3, max_blank=3)
        accs = [copy_accuracy(model, probe, 100, prefix_noise=lv) for lv in levels]
        print(f"| {llm_dir} | " + " | ".join(f"{a:.3f}" for a in accs) + " |", flush=True)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder_dirs", required=True, help="comma-separated HF encoder dirs")
    p.add_argument("--llm_dirs", required=True, help="comma-separated HF LLM dirs (with tokenizer)")
    p.add_argument("--train_configs", default="conf/train.yaml",
                   help="comma-separated training YAMLs: adapter/LoRA/matching/optim settings, each a row")
    p.add_argument("--train_dir", default="dump/raw/train_final",
                   help="training data dir(s), comma-separated (e.g. also data/pretrain_encoder: more sentences)")
    p.add_argument("--dev_dir", default="dump/raw/dev", help="dumped dev data dir")
    p.add_argument("--num_train", type=int, default=3000, help="training utterances (unaugmented ones first)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch_size", type=int, default=24)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--eval_every", type=int, default=250)
    p.add_argument("--decode_utts", type=int, default=200, help="dev utterances decoded greedily for the WER")
    p.add_argument("--noise_levels", default="0,0.5,1,1.5", help="prefix noise levels of the copy table")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    encoder_dirs, llm_dirs = args.encoder_dirs.split(","), args.llm_dirs.split(",")
    train_configs = args.train_configs.split(",")
    dev_audio = load_set(args.dev_dir, 0, args.seed)
    noisy_copy_table(llm_dirs, [t for _, _, t in dev_audio], [float(v) for v in args.noise_levels.split(",")])
    # Augmented copies (speed, noise, edges) carry a prefix in their id: take the plain utterances.
    train_audio = [u for d in args.train_dir.split(",") for u in load_set(d, 0, args.seed)
                   if "-" not in u[0].split("_")[0]]
    train_audio = train_audio[: args.num_train]
    cached = {}
    for encoder_dir in encoder_dirs:
        model, _ = build(train_configs[0], encoder_dir, llm_dirs[0], frozen_encoder=True)
        t0 = time.time()
        cached[encoder_dir] = (encode(model.encoder.eval(), train_audio), encode(model.encoder, dev_audio))
        print(f"{encoder_dir}: {len(train_audio)} + {len(dev_audio)} utterances encoded in {time.time() - t0:.0f} s")
    rows = []
    for train_config, encoder_dir, llm_dir in itertools.product(train_configs, encoder_dirs, llm_dirs):
        print(f"{train_config}: encoder {encoder_dir} + LLM {llm_dir}:", flush=True)
        rows.append((train_config, encoder_dir, llm_dir,
                     train_pair(args, train_config, encoder_dir, llm_dir, *cached[encoder_dir])))
    print(f"\n| training YAML | encoder | LLM | valid acc | acc_mismatched | dev greedy WER | adapter-CTC WER | "
          f"train time (s) |  ({args.steps} steps)")
    print("|---|---|---|---|---|---|---|---|")
    for train_config, encoder_dir, llm_dir, r in rows:
        print(f"| {train_config} | {encoder_dir} | {llm_dir} | {r['acc']:.3f} | {r['acc_mismatched']:.3f} | "
              f"{r['wer']:.1f} | {r['ctc_wer']:.1f} | {r['train_s']:.0f} |")


if __name__ == "__main__":
    main()
