#!/usr/bin/env python3
"""Training throughput of the paper's system (HuBERT-large -> Conv1dMLP -> vicuna-7b-v1.5, LoRA on both sides):
audio-seconds/s, tokens/s, peak memory and MFU on realistic length-bucketed batches, plus the time of one
LibriSpeech-960 epoch.

The model is built by ``SpeechLLMTask.build_model`` from the recipe YAML (default: the librispeech LoRA config),
with random weights unless local HF dirs are given, and trained with AdamW steps under bf16 autocast with SDPA
attention (the YAML's gradient checkpointing and weight dtype, overridable). Batches: utterance durations drawn
from a LibriSpeech-960-like distribution (2-35 s, mean ~12.8 s), transcripts of ~3 words/s x 1.3 tokens/word,
grouped by ESPnet's own batch sampler (``numel`` or ``length``, ``batch_bins`` from the YAML) and sampled at
random across length buckets.

MFU = analytic model FLOPs per second / a bf16 (or fp32) matmul peak MEASURED on this device in the same run.
Model FLOPs count forward + backward matrix products per utterance at its own length (padding is waste, not
work); frozen weights get no weight-gradient products (formulas: ``benchmark/flops.py``).
Gradient-checkpointing recomputation is shown as hardware FLOPs (HFU), not in MFU.

    python benchmark/train_throughput.py                       # CPU: scaled-down model (--scale tiny), seconds
    python benchmark/train_throughput.py --scale full --device cuda          # the paper's sizes on one GPU
    python benchmark/train_throughput.py --scale full --device cuda \\
        --encoder_dir exp/pretrained/encoder --llm_dir exp/pretrained/llm   # the real checkpoints
    python benchmark/train_throughput.py --scale full --device cuda --llm_finetune full --gradient_checkpointing true

``--scale tiny`` keeps the architecture (real HuBERT conv front-end with 320x downsampling, Llama with a 32k
vocabulary) with narrow, shallow layers; the encoder LoRA span keeps the paper's top-20-of-24 fraction.
"""
import argparse
import math
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import flops as F  # noqa: E402  (benchmark/flops.py, next to this script)

from espnet_speechllm.utils.reference_configs import HUBERT_LARGE_LL60K, VICUNA_7B_V1_5  # noqa: E402

PAPER_YAML = REPO / "egs2/librispeech_llm/asr1/conf/train_hubert_conv1dmlp_vicuna_lora.yaml"
SAMPLE_RATE = 16000

# Narrow/shallow versions of the reference architectures: same layer types and front-end, CPU-sized.
TINY_ENCODER = dict(
    HUBERT_LARGE_LL60K, hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
    conv_dim=[128] * 7, num_conv_pos_embeddings=32, num_conv_pos_embedding_groups=4,
)
TINY_LLM = dict(VICUNA_7B_V1_5, hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=4,
                num_key_value_heads=4)
TINY_ADAPTER_HIDDEN = 512  # the paper's 2048 is half the LLM width; same ratio here
TINY_BATCH_BINS = 480_000  # ~30 s of 16 kHz audio per batch (the YAML's 4.8M is ~300 s)

# LibriSpeech-960-like durations (s): mostly 12-17 s segments, a tail of short ones and a few long ones.
DURATION_MIXTURE = ((0.65, 12.0, 17.0), (0.30, 2.0, 12.0), (0.05, 17.0, 35.0))

TOKENIZER_TEXT = (
    "user assistant transcribe the audio\n"
    "he hoped there would be stew for dinner turnips and carrots and bruised potatoes\n"
    "stuff it into you his belly counselled him\n"
    "after early nightfall the yellow lamps would light up here and there the squalid quarter\n"
)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = parser.add_argument_group("model")
    g.add_argument("--scale", choices=["tiny", "full"], default=None,
                   help="tiny: CPU-sized layers; full: the paper's sizes (default: full on cuda, tiny otherwise)")
    g.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    g.add_argument("--config", default=str(PAPER_YAML), help="training YAML (encoder/adapter/llm/matching, batching)")
    g.add_argument("--encoder_dir", default=None, help="local HF encoder dir (default: random weights)")
    g.add_argument("--llm_dir", default=None, help="local HF LLM dir with tokenizer (default: random weights)")
    g.add_argument("--encoder_finetune", choices=["frozen", "lora", "full"], default=None, help="override the YAML")
    g.add_argument("--llm_finetune", choices=["frozen", "lora", "full"], default=None, help="override the YAML")
    g.add_argument("--precomputed_encoder", action="store_true",
                   help="frozen encoder: feed its outputs, computed once before timing (bin/dump_encoder_feats); "
                        "the step FLOPs then leave the encoder out")
    g.add_argument("--gradient_checkpointing", choices=["yaml", "true", "false"], default="yaml",
                   help="LLM gradient checkpointing (default: as in the YAML)")
    g.add_argument("--llm_weight_dtype", choices=["yaml", "float32", "bfloat16"], default="yaml",
                   help="dtype the LLM weights are held in (default: as in the YAML; full fine-tuning: float32)")
    g.add_argument("--amp", choices=["bf16", "none"], default="bf16", help="autocast dtype")
    g.add_argument("--attn_implementation", choices=["sdpa", "eager"], default="sdpa")
    g = parser.add_argument_group("batches")
    g.add_argument("--batch_type", choices=["numel", "length"], default=None, help="default: the YAML's")
    g.add_argument("--batch_bins", type=int, default=None,
                   help=f"default: the YAML's (full) or {TINY_BATCH_BINS} (tiny)")
    g.add_argument("--num_utts", type=int, default=2000, help="utterance pool the batches are made from")
    g.add_argument("--min_duration", type=float, default=2.0)
    g.add_argument("--max_duration", type=float, default=35.0, help="the recipe filters at 20 s (max_wav_duration)")
    g.add_argument("--words_per_second", type=float, default=3.0)
    g.add_argument("--tokens_per_word", type=float, default=1.3, help="Llama sentencepiece on lower-case English")
    g = parser.add_argument_group("run")
    g.add_argument("--steps", type=int, default=None, help="timed steps (default: 6 tiny, 10 full)")
    g.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 1 tiny, 3 full)")
    g.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads on CPU (default: the cores other processes leave idle, judged by the "
                        "load average; OpenMP threads sharing a busy core stall each other)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--check_flops", choices=["auto", "true", "false"], default="auto",
                   help="compare the analytic count with torch's FlopCounterMode on one batch (auto: tiny only)")
    g.add_argument("--profile", action="store_true", help="print the top operators of two steps")
    g.add_argument("--flops_only", action="store_true",
                   help="build on the meta device and print the analytic FLOPs only (no timing; any --scale on a CPU)")
    g.add_argument("--matmul_size", type=int, default=None, help="peak measurement size (default 8192 GPU, 2048 CPU)")
    g = parser.add_argument_group("epoch estimate")
    g.add_argument("--corpus_hours", type=float, default=960.0)
    g.add_argument("--speed_perturb_factors", type=float, nargs="*", default=[0.9, 1.0, 1.1],
                   help="sox speed factors of stage 3 (none: no perturbation)")
    g.add_argument("--noise_aug_ratio", type=float, default=0.3, help="stage 4 noisy copies (librispeech run.sh)")
    g.add_argument("--nonspeech_ratio", type=float, default=0.05, help="stage 5 non-speech share (librispeech run.sh)")
    g.add_argument("--num_devices", type=int, nargs="*", default=[1, 8],
                   help="also show the epoch time on N devices at ideal data-parallel scaling")
    return parser


# --------------------------------------------------------------------------------------------------- model
def scaled_lora_layers(layers, paper_layers: int, n: int):
    """Keep the YAML's top-k-of-N LoRA span as a fraction of an n-layer encoder."""
    if layers is None:
        return None
    k = max(1, round(n * len(layers) / paper_layers))
    return list(range(n - k, n))


def build_model(args, conf: dict, workdir: str):
    from transformers import LlamaConfig

    from espnet_speechllm.pretrain.tokenizer import train_llama_tokenizer
    from espnet_speechllm.tasks.speechllm import SpeechLLMTask

    encoder_conf = dict(conf["encoder_conf"])
    llm_conf = dict(conf["llm_conf"])
    adapter_conf = dict(conf["adapter_conf"])
    if args.encoder_finetune:
        encoder_conf["finetune"] = args.encoder_finetune
    if args.llm_finetune:
        llm_conf["finetune"] = args.llm_finetune
    if args.gradient_checkpointing != "yaml":
        llm_conf["gradient_checkpointing"] = args.gradient_checkpointing == "true"
    if args.llm_weight_dtype != "yaml":
        llm_conf["weight_dtype"] = args.llm_weight_dtype
    elif llm_conf.get("finetune") == "full":
        llm_conf["weight_dtype"] = "float32"  # trained weights stay fp32 (autocast computes in bf16)
    llm_conf["attn_implementation"] = args.attn_implementation

    if args.encoder_dir:
        encoder_conf["model_dir"] = args.encoder_dir
    else:
        encoder_conf.pop("model_dir", None)
        shape = TINY_ENCODER if args.scale == "tiny" else HUBERT_LARGE_LL60K
        encoder_conf["hf_config"] = dict(model_type="hubert", **shape)
        lora = dict(encoder_conf.get("lora_conf") or {})
        if args.scale == "tiny" and lora.get("layers") is not None:
            lora["layers"] = scaled_lora_layers(lora["layers"], HUBERT_LARGE_LL60K["num_hidden_layers"],
                                                shape["num_hidden_layers"])
            encoder_conf["lora_conf"] = lora
    if args.llm_dir:
        llm_conf["model_dir"] = args.llm_dir
    else:
        llm_dir = os.path.join(workdir, "llm")
        text = os.path.join(workdir, "text.txt")
        with open(text, "w") as f:
            f.write(TOKENIZER_TEXT)
        train_llama_tokenizer(text, llm_dir, vocab_size=320)
        shape = TINY_LLM if args.scale == "tiny" else VICUNA_7B_V1_5
        LlamaConfig(**shape).save_pretrained(llm_dir)
        llm_conf.update(model_dir=llm_dir, random_init=True)
    if args.scale == "tiny" and not args.llm_dir:
        adapter_conf["hidden_size"] = TINY_ADAPTER_HIDDEN
    task_args = argparse.Namespace(
        encoder=conf.get("encoder", "hubert"), encoder_conf=encoder_conf, adapter=conf.get("adapter", "conv1d_mlp"),
        adapter_conf=adapter_conf, llm=conf.get("llm", "hf_causal_lm"), llm_conf=llm_conf,
        matching_loss_conf=dict(conf.get("matching_loss_conf") or {}), model_conf={},
    )
    device = torch.device(args.device)
    # Random init directly on the device (a 7B init on the host CPU takes minutes).
    with torch.device(device) if not (args.encoder_dir or args.llm_dir) else nullcontext():
        model = SpeechLLMTask.build_model(task_args)
    return model.to(device), task_args


# --------------------------------------------------------------------------------------------------- data
def draw_utterances(args, rng: np.random.Generator):
    """[(samples, text_tokens)] of a LibriSpeech-like pool."""
    weights = np.array([w for w, _, _ in DURATION_MIXTURE])
    comp = rng.choice(len(DURATION_MIXTURE), size=args.num_utts, p=weights / weights.sum())
    lo = np.array([DURATION_MIXTURE[c][1] for c in comp])
    hi = np.array([DURATION_MIXTURE[c][2] for c in comp])
    dur = np.clip(rng.uniform(lo, hi), args.min_duration, args.max_duration)
    words = rng.poisson(np.maximum(dur * args.words_per_second, 1.0))
    tokens = np.maximum(1, np.round(words * args.tokens_per_word * rng.uniform(0.85, 1.15, size=len(words))))
    return [(int(d * SAMPLE_RATE), int(t)) for d, t in zip(dur, tokens)]


def make_batches(utts, batch_type: str, batch_bins: int, workdir: str):
    """ESPnet's own batch sampler on shape files of the pool: [[utterance index]]."""
    from espnet2.samplers.build_batch_sampler import build_batch_sampler

    speech_shape = os.path.join(workdir, "speech_shape")
    text_shape = os.path.join(workdir, "text_shape")
    with open(speech_shape, "w") as fs, open(text_shape, "w") as ft:
        for i, (s, n) in enumerate(utts):
            fs.write(f"u{i:06d} {s}\n")
            ft.write(f"u{i:06d} {n}\n")
    sampler = build_batch_sampler(type=batch_type, batch_size=1, batch_bins=batch_bins, shape_files=[speech_shape, text_shape],
                                  sort_in_batch="descending", sort_batch="descending")
    return [[int(k[1:]) for k in batch] for batch in sampler]


def batch_tensors(utts, idx, vocab: int, device, gen: torch.Generator):
    samples = torch.tensor([utts[i][0] for i in idx])
    tokens = torch.tensor([utts[i][1] for i in idx])
    speech = 0.1 * torch.randn(len(idx), int(samples.max()), generator=gen)
    speech *= torch.arange(speech.size(1))[None, :] < samples[:, None]
    text = torch.randint(3, vocab, (len(idx), int(tokens.max())), generator=gen)
    text[torch.arange(text.size(1))[None, :] >= tokens[:, None]] = -1
    return {k: v.to(device) for k, v in dict(speech=speech, speech_lengths=samples, text=text,
                                              text_lengths=tokens).items()}


# --------------------------------------------------------------------------------------------------- timing
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_matmul_peak(device, dtype, n: int, repeats: int = 10) -> float:
    """Best FLOP/s of an n x n x n matmul in ``dtype`` on ``device`` (a measured, not a datasheet, peak)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(3):
        a @ b
    sync(device)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best


class _DumpedFeatures(torch.nn.Module):
    """Stands in for encoder: precomputed without a model dir: the batch already holds encoder outputs."""

    def forward(self, feats, feats_lengths):
        return feats, feats_lengths


@torch.no_grad()
def precompute_encoder_outputs(model, data, autocast_ctx):
    """Replace each batch's waveforms by the frozen encoder's outputs, then drop the encoder from the model."""
    if getattr(model.encoder, "finetune", None) != "frozen":
        raise SystemExit("--precomputed_encoder needs a frozen encoder (--encoder_finetune frozen)")
    out = []
    for batch in data:
        with autocast_ctx():
            feats, lengths = model.encoder(batch["speech"], batch["speech_lengths"])
        out.append({**batch, "speech": feats.float(), "speech_lengths": lengths})
    model.encoder = _DumpedFeatures()
    return out


def train_step(model, params, opt, batch, autocast_ctx):
    with autocast_ctx():
        loss, _, _ = model(**batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 5.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.detach()


def check_flops(model, shape, utts, idx, batch, autocast_ctx) -> tuple:
    """(counted, analytic) FLOPs of one forward+backward on ``batch`` (padded, as executed)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    # The math backend decomposes attention into matmuls the counter sees (CPU flash kernels are not counted).
    with sdpa_kernel(SDPBackend.MATH), counter:
        with autocast_ctx():
            loss, _, _ = model(**batch)
        loss.backward()
    model.zero_grad(set_to_none=True)
    analytic = F.step_flops(shape, [utts[i][0] for i in idx], [utts[i][1] for i in idx], padded=True)
    return counter.get_total_flops(), analytic.hardware


def print_flops(useful: "F.Flops", padded: "F.Flops", steps: int, audio_s: float) -> None:
    print("\nModel FLOPs per step (analytic, forward + backward, each utterance at its own length):")
    print(f"  {'component':<22}{'forward':>14}{'backward':>14}")
    for name, fw, bw in F.summarize(useful):
        print(f"  {name:<22}{human(fw / steps):>14}{human(bw / steps):>14}")
    print(f"  {'total':<22}{human(sum(useful.fwd.values()) / steps):>14}{human(sum(useful.bwd.values()) / steps):>14}"
          f"   = {human(useful.model / steps, 'FLOP')} per step")
    print(f"  per audio second: {human(useful.model / audio_s, 'FLOP')}; padded batches execute "
          f"{padded.model / useful.model:.3f}x that; checkpointing recomputes {human(useful.recompute / steps)} per step")
    print("  (linear: 2*rows*in*out forward; backward = input gradient where gradient flows + weight gradient where "
          "the weight is trainable: frozen 1x, frozen below the trained span 0x, full 2x; LoRA r adds "
          "2*rows*r*(in+out) forward; attention 2*L*L*d per product, 1x per operand needing a gradient)")


def epoch_audio_seconds(args) -> tuple:
    factor = F.audio_hours_factor(args.speed_perturb_factors) if args.speed_perturb_factors else 1.0
    epoch_s = args.corpus_hours * 3600 * factor * (1 + args.noise_aug_ratio) * (1 + args.nonspeech_ratio)
    print(f"\nOne epoch: {args.corpus_hours:g} h x {factor:.3f} (speed perturbation "
          f"{' '.join(f'{f:g}' for f in args.speed_perturb_factors) or 'none'}) x {1 + args.noise_aug_ratio:g} "
          f"(noisy copies) x {1 + args.nonspeech_ratio:g} (non-speech) = {epoch_s / 3600:,.0f} h of audio")
    return epoch_s


def human(x: float, unit: str = "") -> str:
    for p, s in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= p:
            return f"{x / p:.2f} {s}{unit}"
    return f"{x:.2f} {unit}"


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.scale = args.scale or ("full" if torch.device(args.device).type == "cuda" else "tiny")
    if args.flops_only:
        if args.encoder_dir or args.llm_dir:
            raise SystemExit("--flops_only builds random-init shapes on the meta device: drop --encoder_dir/--llm_dir")
        args.device = "meta"
    device = torch.device(args.device)
    load = os.getloadavg()[0]
    if device.type == "cpu":
        cores = os.cpu_count() or 1
        torch.set_num_threads(args.threads or max(1, min(torch.get_num_threads(), cores - round(load))))
    with open(args.config, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    batch_type = args.batch_type or conf.get("batch_type", "numel")
    if batch_type not in ("numel", "length"):
        batch_type = "numel"
    batch_bins = args.batch_bins or (TINY_BATCH_BINS if args.scale == "tiny" else int(conf.get("batch_bins", 4_800_000)))
    steps = args.steps or (6 if args.scale == "tiny" else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.scale == "tiny" else 3)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    amp_dtype = torch.bfloat16 if args.amp == "bf16" else torch.float32

    def autocast_ctx():
        return torch.autocast(device.type, dtype=torch.bfloat16) if args.amp == "bf16" else nullcontext()

    workdir = tempfile.mkdtemp(prefix="train_throughput_")
    try:
        t0 = time.perf_counter()
        model, task_args = build_model(args, conf, workdir)
        build_s = time.perf_counter() - t0
        model.train()
        shape = F.describe_model(model)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = None if args.flops_only else torch.optim.AdamW(params, **dict(conf.get("optim_conf") or {"lr": 1e-4}))
        vocab = model.llm.model.get_input_embeddings().num_embeddings

        utts = draw_utterances(args, rng)
        batches = make_batches(utts, batch_type, batch_bins, workdir)
        order = rng.permutation(len(batches))
        chosen = [batches[order[i % len(order)]] for i in range(args.warmup + steps)]

        n_total = sum(p.numel() for p in model.parameters())
        if device.type == "cpu" and load > 0.5:
            print(f"note: load average {load:.1f} on {os.cpu_count()} cores before the run: other processes share the "
                  f"CPU ({torch.get_num_threads()} thread(s) used); figures are lower than on an idle machine")
        print(f"device: {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}"
              f", torch {torch.__version__}, threads {torch.get_num_threads()}")
        print(f"model: --scale {args.scale}; encoder {task_args.encoder_conf.get('model_dir') or 'random init'} "
              f"({task_args.encoder_conf['finetune']}), LLM {args.llm_dir or 'random init'} "
              f"({task_args.llm_conf['finetune']}, weights {task_args.llm_conf.get('weight_dtype', 'float32')}, "
              f"gradient checkpointing {shape.llm.gradient_checkpointing}), {args.attn_implementation}, "
              f"autocast {args.amp}; {n_total / 1e6:,.1f} M params, {sum(p.numel() for p in params) / 1e6:,.2f} M "
              f"trainable; built in {build_s:.1f} s")
        durs = np.array([s for s, _ in utts]) / SAMPLE_RATE
        sizes = [len(b) for b in batches]
        print(f"batches: ESPnet {batch_type} sampler, batch_bins {batch_bins:,} over {len(utts)} utterances "
              f"({durs.min():.1f}-{durs.max():.1f} s, mean {durs.mean():.1f} s, ~{args.words_per_second} words/s) -> "
              f"{len(batches)} batches of {min(sizes)}-{max(sizes)} utterances (mean {np.mean(sizes):.1f})")

        if args.flops_only:
            useful, padded = F.Flops(), F.Flops()
            for b in batches:
                useful += F.step_flops(shape, [utts[i][0] for i in b], [utts[i][1] for i in b])
                padded += F.step_flops(shape, [utts[i][0] for i in b], [utts[i][1] for i in b], padded=True)
            audio_s = sum(s for s, _ in utts) / SAMPLE_RATE
            print_flops(useful, padded, len(batches), audio_s)
            epoch_s = epoch_audio_seconds(args)
            print(f"  = {human(useful.model / audio_s * epoch_s, 'FLOP')} of model FLOPs per epoch")
            return 0

        do_check = args.check_flops == "true" or (args.check_flops == "auto" and args.scale == "tiny")
        if do_check:
            # the batch with the least audio (2+ utterances) keeps the counted (math-attention) pass quick
            idx = min(batches, key=lambda b: sum(utts[i][0] for i in b) + 10**9 * (len(b) < 2))
            counted, analytic = check_flops(model, shape, utts, idx, batch_tensors(utts, idx, vocab, device, gen),
                                            autocast_ctx)
            print(f"FLOP check, forward + backward of a padded batch of {len(idx)}: torch FlopCounterMode "
                  f"{human(counted, 'FLOP')}, analytic {human(analytic, 'FLOP')} (ratio {counted / analytic:.4f})")
            if shape.encoder.pos_conv_trainable:
                print("  (FlopCounterMode counts the weight gradient of a grouped convolution x groups: the trained "
                      "positional conv of the encoder makes its count higher)")

        data = [batch_tensors(utts, idx, vocab, device, gen) for idx in chosen]
        if args.precomputed_encoder:
            data = precompute_encoder_outputs(model, data, autocast_ctx)
        for i in range(args.warmup):
            train_step(model, params, opt, data[i], autocast_ctx)
        sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for i in range(args.warmup, args.warmup + steps):
            sync(device)
            t = time.perf_counter()
            loss = train_step(model, params, opt, data[i], autocast_ctx)
            sync(device)
            times.append(time.perf_counter() - t)
        if not torch.isfinite(loss):
            print(f"warning: non-finite loss {loss.item()}")

        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
            with profile(activities=acts) as prof:
                for i in range(2):
                    train_step(model, params, opt, data[args.warmup + i % steps], autocast_ctx)
                sync(device)
            key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
            print(prof.key_averages().table(sort_by=key, row_limit=20))

        timed = chosen[args.warmup:]
        audio_s = sum(utts[i][0] for b in timed for i in b) / SAMPLE_RATE
        text_tokens = sum(utts[i][1] for b in timed for i in b)
        useful = F.Flops()
        padded = F.Flops()
        llm_tokens = 0
        for b in timed:
            s = [utts[i][0] for i in b]
            n = [utts[i][1] for i in b]
            useful += F.step_flops(shape, s, n)
            padded += F.step_flops(shape, s, n, padded=True)
            llm_tokens += sum(shape.prompt_tokens + math.ceil(shape.encoder.frames(x) / shape.adapter.downsample)
                              + y + 1 for x, y in zip(s, n))
        if args.precomputed_encoder:
            for flops in (useful, padded):  # dumped once, not part of a training step
                for part in ("encoder_cnn", "encoder_transformer"):
                    flops.fwd.pop(part, None)
                    flops.bwd.pop(part, None)
                flops.wasted = 0.0
            print("encoder outputs precomputed (frozen encoder, dumped once): the encoder is not in the step")
        total_s = sum(times)
        n_mm = args.matmul_size or (8192 if device.type == "cuda" else 2048)
        peak = measure_matmul_peak(device, amp_dtype, n_mm)

        print(f"\n{steps} timed steps ({sum(len(b) for b in timed)} utterances, {audio_s:.0f} s of audio) in "
              f"{total_s:.2f} s; step time median {statistics.median(times):.3f} s, min {min(times):.3f} s")
        print(f"  audio-seconds/s     {audio_s / total_s:,.1f}")
        print(f"  transcript tokens/s {text_tokens / total_s:,.1f}")
        print(f"  LLM tokens/s        {llm_tokens / total_s:,.1f}   (prompt + speech frames + transcript + EOS)")
        if device.type == "cuda":
            print(f"  peak memory         {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB allocated "
                  f"({torch.cuda.max_memory_reserved(device) / 2**30:.2f} GiB reserved)")
        else:
            print(f"  peak memory         {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB "
                  f"(peak RSS of this process)")
        print_flops(useful, padded, steps, audio_s)
        achieved = useful.model / total_s
        print(f"\nmeasured {args.amp if args.amp == 'bf16' else 'fp32'} matmul peak ({n_mm}^3): "
              f"{human(peak, 'FLOP/s')}")
        print(f"  MFU {100 * achieved / peak:.1f} %  ({human(achieved, 'FLOP/s')} model FLOPs)   "
              f"HFU {100 * (useful.hardware + padded.model - useful.model) / total_s / peak:.1f} % "
              f"(+ padding + recomputation)")

        epoch_s = epoch_audio_seconds(args)
        rate = audio_s / total_s
        for n in args.num_devices:
            print(f"  {n} x this device{' (ideal data-parallel scaling)' if n > 1 else ''}: "
                  f"{hours(epoch_s / rate / n)}")
        if args.scale == "tiny":
            print("  (--scale tiny: the scaled-down model; run --scale full on a GPU for the paper's system)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
