#!/usr/bin/env python3
"""How much of the transcript can be read linearly from a frozen encoder's frames? A linear CTC probe.

The LLM can only transcribe what the encoder's frames carry. This probe runs a FROZEN encoder (an HF model dir,
e.g. exp/pretrained/encoder) once over a training set and the dev set, trains one linear layer with CTC on the
LLM tokenizer's tokens (blank = the unk token) over the cached frames, and prints greedy CTC WER / CER on the
dev set and on training utterances every ``--eval_every`` steps. The dev set spans every voice of the corpus, so
its figure is the encoder's ceiling for the recipe; the pretraining report's held-out CER is on the pretraining
data's own held-out utterances.

    cd egs2/synth_llm/asr1
    python ../../../benchmark/encoder_probe.py --encoder_dir exp/pretrained/encoder --llm_dir exp/pretrained/llm

A linear readout is a lower bound on what the adapter and LoRA can read from the frames; the training WER next
to the dev WER says whether the readout overfits.
"""
import argparse
import random
import time
from typing import List, Tuple

import jiwer
import torch

from espnet_speechllm.data.audio import SAMPLE_RATE, load_audio
from espnet_speechllm.data.kaldi_dir import read_kaldi_file
from espnet_speechllm.encoder.dump import length_batches
from espnet_speechllm.encoder.hf_speech_encoder import HFSpeechEncoder
from espnet_speechllm.llm.hf_causal_lm import load_tokenizer
from espnet_speechllm.loss.adapter_ctc import greedy_ctc_ids


def load_set(data_dir: str, n: int, seed: int) -> List[Tuple[str, object, str]]:
    """(utt_id, waveform, transcript) of ``n`` plain (not augmented) speech utterances (all with n <= 0)."""
    scp, text = read_kaldi_file(f"{data_dir}/wav.scp"), read_kaldi_file(f"{data_dir}/text", allow_empty_value=True)
    ids = sorted(u for u in scp if text.get(u) and "-" not in u.split("_")[0])  # sp0.9-..., noisy-...: copies
    random.Random(seed).shuffle(ids)
    return [(u, load_audio(u, scp[u]), text[u]) for u in (ids[:n] if n > 0 else ids)]


@torch.no_grad()
def encode(encoder, utts, tokenizer, batch_seconds: float = 100.0):
    """(frames (T, D), token ids, transcript) per utterance, in length-sorted batches."""
    by_id = {u[0]: u for u in utts}
    out = []
    for ids in length_batches({u: len(w) for u, w, _ in utts}, int(batch_seconds * SAMPLE_RATE)):
        wav = [torch.as_tensor(by_id[u][1]) for u in ids]
        hidden, lengths = encoder(torch.nn.utils.rnn.pad_sequence(wav, batch_first=True),
                                  torch.tensor([len(w) for w in wav]))
        out += [(hidden[j, : lengths[j]].clone(), tokenizer(by_id[u][2], add_special_tokens=False).input_ids,
                 by_id[u][2]) for j, u in enumerate(ids)]
    return out


def greedy_wer_cer(head, items, tokenizer, blank: int) -> Tuple[float, float]:
    hyps = []
    with torch.no_grad():
        for frames, _, _ in items:
            hyps.append(tokenizer.decode(greedy_ctc_ids(head(frames).argmax(-1), blank)).strip())
    refs = [text for _, _, text in items]
    return 100 * jiwer.wer(refs, hyps), 100 * jiwer.cer(refs, hyps)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder_dir", required=True, help="HF encoder dir (frozen)")
    p.add_argument("--llm_dir", required=True, help="HF LLM dir: its tokenizer gives the CTC units")
    p.add_argument("--train_dir", default="dump/raw/train_final", help="training data dir (plain copies are used)")
    p.add_argument("--dev_dir", default="dump/raw/dev", help="dev data dir")
    p.add_argument("--num_train", type=int, default=3000)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch_size", type=int, default=24)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--eval_every", type=int, default=500)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    tokenizer = load_tokenizer(args.llm_dir)
    blank = tokenizer.unk_token_id
    encoder = HFSpeechEncoder(model_dir=args.encoder_dir, finetune="frozen").eval()
    t0 = time.time()
    train = encode(encoder, load_set(args.train_dir, args.num_train, args.seed), tokenizer)
    dev = encode(encoder, load_set(args.dev_dir, 0, args.seed), tokenizer)
    print(f"{args.encoder_dir}: {len(train)} + {len(dev)} utterances encoded in {time.time() - t0:.0f} s", flush=True)
    head = torch.nn.Linear(train[0][0].size(1), len(tokenizer))
    opt = torch.optim.Adam(head.parameters(), lr=args.lr)
    rng = random.Random(args.seed)
    print("| step | dev WER | dev CER | train WER | train CER |\n|---|---|---|---|---|")
    for step in range(1, args.steps + 1):
        batch = rng.sample(train, args.batch_size)
        frames = torch.nn.utils.rnn.pad_sequence([f for f, _, _ in batch], batch_first=True)
        log_probs = head(frames).log_softmax(-1).transpose(0, 1)  # (T, B, V)
        targets = torch.nn.utils.rnn.pad_sequence([torch.tensor(t) for _, t, _ in batch], batch_first=True)
        loss = torch.nn.functional.ctc_loss(log_probs, targets, torch.tensor([f.size(0) for f, _, _ in batch]),
                                            torch.tensor([len(t) for _, t, _ in batch]), blank=blank,
                                            zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % args.eval_every == 0 or step == args.steps:
            dev_wer, dev_cer = greedy_wer_cer(head, dev, tokenizer, blank)
            train_wer, train_cer = greedy_wer_cer(head, train[: len(dev)], tokenizer, blank)
            print(f"| {step} | {dev_wer:.1f} | {dev_cer:.1f} | {train_wer:.1f} | {train_cer:.1f} |", flush=True)


if __name__ == "__main__":
    main()
