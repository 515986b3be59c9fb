#!/usr/bin/env python3
"""Decoding speed: espnet_speechllm's beam search vs HF ``generate`` on the same model, inputs and settings.

Decodes batches of prefix embeddings shaped like LLM-ASR inputs (prompt ~15 tokens + speech 50-200 adapter frames,
left-padded) with both decoders in one run, checks that the hypotheses are identical and the scores equal, and
prints utterances/s of each and the ratio. Our decoder runs twice: with the shared-prefix KV (default) and with a
per-beam HF KV cache, to show where the time goes.

Random-weight models get a sharpened lm_head (peaked distributions) and a boosted EOS row, and decoding uses
``min_new_tokens`` so that outputs are 20-40 tokens long like real transcripts; both decoders get the same settings.

    python benchmark/decode_speed.py                                   # tiny Llama, CPU, fp32, beam 4, batch 16
    python benchmark/decode_speed.py --device cuda --dtype bf16 --llm_config 7b
    python benchmark/decode_speed.py --device cuda --dtype bf16 --llm_dir exp/pretrained/llm
"""
import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from espnet_speechllm.decode.beam_search import BeamSearch  # noqa: E402
from espnet_speechllm.decode.config import BeamSearchConfig  # noqa: E402

LLM_CONFIGS = {
    # the CPU test size: a small Llama with a sentencepiece-sized vocabulary
    "tiny": dict(vocab_size=1000, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                 num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048),
    # vicuna-7b-v1.5 shapes (random weights), for a GPU
    "7b": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    parser.add_argument("--llm_config", default="tiny", choices=sorted(LLM_CONFIGS), help="random-weight LLM shape")
    parser.add_argument("--llm_dir", default=None, help="local HF causal-LM dir (overrides --llm_config)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--num_batches", type=int, default=2, help="batches per timed pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per decoder (best and median shown)")
    parser.add_argument("--beam_size", type=int, default=4)
    parser.add_argument("--no_repeat_ngram_size", type=int, default=3)
    parser.add_argument("--length_penalty", type=float, default=1.0)
    parser.add_argument("--max_new_tokens", type=int, default=40)
    parser.add_argument("--min_new_tokens", type=int, default=20)
    parser.add_argument("--prompt_len", type=int, default=15)
    parser.add_argument("--speech_len", type=int, nargs=2, default=[50, 200], metavar=("MIN", "MAX"),
                        help="adapter frames per utterance, uniform in [MIN, MAX]")
    parser.add_argument("--lm_head_scale", type=float, default=8.0, help="random weights: sharpen the lm_head")
    parser.add_argument("--eos_scale", type=float, default=5.0, help="random weights: boost the EOS row")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="print the top functions of one pass of each")
    return parser


def build_model(args, dtype: torch.dtype, device: torch.device) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    if args.llm_dir:
        model = AutoModelForCausalLM.from_pretrained(args.llm_dir, dtype=dtype, local_files_only=True)
        return model.to(device).eval()
    torch.manual_seed(args.seed)
    config = LlamaConfig(**LLM_CONFIGS[args.llm_config], bos_token_id=1, eos_token_id=2, pad_token_id=0)
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, dtype=dtype).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(args.lm_head_scale)
        model.lm_head.weight[config.eos_token_id].mul_(args.eos_scale)
    return model


def make_batches(args, model, dtype, device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Left-padded prefix embeddings (B, T, D) and masks (B, T), scaled like the model's token embeddings."""
    gen = torch.Generator().manual_seed(args.seed + 1)
    embed = model.get_input_embeddings().weight
    std = float(embed.detach().float().std())
    batches = []
    for _ in range(args.num_batches):
        lengths = args.prompt_len + torch.randint(args.speech_len[0], args.speech_len[1] + 1,
                                                  (args.batch_size,), generator=gen)  # (B,)
        max_len = int(lengths.max())
        embeds = torch.randn(args.batch_size, max_len, embed.shape[1], generator=gen) * std  # (B, T, D)
        mask = (torch.arange(max_len)[None, :] >= (max_len - lengths)[:, None]).long()  # (B, T)
        embeds = embeds * mask[..., None]
        batches.append((embeds.to(device=device, dtype=dtype), mask.to(device)))
    return batches


def run_ours(decoder: BeamSearch, batches):
    return [[(h.token_ids, h.score) for h in hyps] for e, m in batches for hyps in decoder(e, m)]


def run_hf(model, batches, args, eos_id: int, pad_id: int):
    outputs = []
    for embeds, mask in batches:
        with torch.inference_mode():
            out = model.generate(
                inputs_embeds=embeds, attention_mask=mask, num_beams=args.beam_size, do_sample=False,
                no_repeat_ngram_size=args.no_repeat_ngram_size, length_penalty=args.length_penalty,
                max_new_tokens=args.max_new_tokens, min_new_tokens=args.min_new_tokens, eos_token_id=eos_id,
                pad_token_id=pad_id, output_scores=True, output_logits=args.beam_size == 1,
                return_dict_in_generate=True,
            )
        for i, seq in enumerate(out.sequences.tolist()):
            ids = seq[: seq.index(eos_id)] if eos_id in seq else seq
            if args.beam_size > 1:
                score = float(out.sequences_scores[i])
            else:  # greedy: sum of log-probs / length ** length_penalty, like ours
                length = len(ids) + (eos_id in seq)
                logp = [torch.log_softmax(out.logits[j][i].float(), -1)[seq[j]] for j in range(length)]
                score = float(sum(logp)) / length**args.length_penalty
            outputs.append([(ids, score)])
    return outputs


def compare(ours, hf) -> tuple[int, float, str]:
    """(utterances with identical 1-best tokens, max |score diff|, first mismatch)"""
    same, max_diff, first = 0, 0.0, ""
    for i, (a, b) in enumerate(zip(ours, hf)):
        if a[0][0] == b[0][0]:
            same += 1
            max_diff = max(max_diff, abs(a[0][1] - b[0][1]))
        elif not first:
            first = f"utt {i}: ours {a[0][0]} ({a[0][1]:.4f}) vs HF {b[0][0]} ({b[0][1]:.4f})"
    return same, max_diff, first


def timed(fn, device, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def profile(fn, top: int = 15) -> str:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    stream = io.StringIO()
    pstats.Stats(prof, stream=stream).sort_stats("tottime").print_stats(top)
    return stream.getvalue()


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    warnings.filterwarnings("ignore", message=".*no_repeat_ngram_size.*")  # generate's note on inputs_embeds
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = DTYPES[args.dtype]
    model = build_model(args, dtype, device)
    eos_id = model.generation_config.eos_token_id
    eos_id = eos_id[0] if isinstance(eos_id, list) else eos_id
    pad_id = model.generation_config.pad_token_id
    pad_id = eos_id if pad_id is None else pad_id
    batches = make_batches(args, model, dtype, device)
    num_utts = args.batch_size * args.num_batches
    settings = dict(
        beam_size=args.beam_size, no_repeat_ngram_size=args.no_repeat_ngram_size, length_penalty=args.length_penalty,
        max_new_tokens=args.max_new_tokens, min_new_tokens=args.min_new_tokens, eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    shared = BeamSearch(model, BeamSearchConfig(**settings, shared_prefix_kv=True))
    per_beam = BeamSearch(model, BeamSearchConfig(**settings, shared_prefix_kv=False))
    decoders = {
        "ours (shared-prefix KV)": lambda: run_ours(shared, batches),
        "ours (per-beam KV cache)": lambda: run_ours(per_beam, batches),
        "HF generate": lambda: run_hf(model, batches, args, eos_id, pad_id),
    }
    prefix_lens = [int(m.sum(1).min()) for _, m in batches] + [int(m.sum(1).max()) for _, m in batches]
    print(f"model: {args.llm_dir or args.llm_config} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M "
          f"params) {args.dtype} on {device}, torch threads {torch.get_num_threads()}")
    print(f"{num_utts} utterances in {args.num_batches} batches of {args.batch_size}, prefix lengths "
          f"{min(prefix_lens)}-{max(prefix_lens)}; beam {args.beam_size}, no_repeat_ngram_size "
          f"{args.no_repeat_ngram_size}, length_penalty {args.length_penalty}, new tokens "
          f"{args.min_new_tokens}-{args.max_new_tokens}")

    outputs = {name: fn() for name, fn in decoders.items()}  # warm-up pass, also the outputs compared
    hf_out = outputs["HF generate"]
    lengths = sorted(len(hyps[0][0]) for hyps in hf_out)
    print(f"output lengths (HF): min {lengths[0]}, median {lengths[len(lengths) // 2]}, max {lengths[-1]}")
    all_same = True
    for name in list(decoders)[:2]:
        same, max_diff, first = compare(outputs[name], hf_out)
        # In bf16/fp16 the shared-prefix attention rounds differently from SDPA over a per-beam cache, which
        # can flip near-tied hypotheses of a random model; the per-beam path runs generate's kernels.
        if dtype == torch.float32 or "per-beam" in name:
            all_same &= same == num_utts
        print(f"{name}: identical 1-best to HF for {same}/{num_utts} utterances, max |score diff| {max_diff:.2e}"
              + (f"; first mismatch {first}" if first else ""))

    times = {name: [] for name in decoders}
    for _ in range(args.repeats):  # interleaved, so that load changes hit every decoder alike
        for name, fn in decoders.items():
            times[name] += timed(fn, device, 1)
    hf_best = min(times["HF generate"])
    print(f"{'decoder':28s} {'best s':>8s} {'median s':>9s} {'utt/s':>8s} {'x HF':>6s}")
    for name, ts in times.items():
        best = min(ts)
        print(f"{name:28s} {best:8.3f} {statistics.median(ts):9.3f} {num_utts / best:8.2f} {hf_best / best:6.2f}")
    if args.profile:
        for name, fn in decoders.items():
            print(f"--- profile: {name}\n{profile(fn)}")
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
