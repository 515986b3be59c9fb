"""Non-speech corpus (stage 2): train and test splits with EMPTY transcripts, and a noise bank for
augmentation that shares no source audio with the test split.

--source musan: the MUSAN corpus (real layout: musan/{noise,music,speech}/<sub>/*.wav; speech/ is never
    used). Files are split into test and train by file (--test_ratio, per category), then cut into
    chunks of --min_chunk_seconds..--max_chunk_seconds as sox pipe entries (no audio is copied).
    noise_bank = chunks of the train files of --bank_categories.
--source sox: sounds synthesized with sox (white/pink/brown noise, tones, chords, sweeps, hum, noise+tone,
    time-reversed speech from --speech_scp) written under --audio_dir. Train and test reverse different
    utterances; the bank holds stationary noises.

Outputs <data_dir>/{nonspeech_train,nonspeech_test,noise_bank}/{wav.scp,text,utt2spk,spk2utt,utt2category}
("text" lines are the utterance id alone: the empty transcript).

    python -m espnet_speechllm.bin.make_nonspeech --source musan --musan_dir /corpora/musan --data_dir data
    python -m espnet_speechllm.bin.make_nonspeech --source sox --speech_scp data/train/wav.scp --data_dir data
"""
import argparse
import collections
import glob
import logging
import os
import random
import shlex
import shutil
import time
from typing import Dict, List, Optional, Tuple

import soundfile as sf

from espnet_speechllm.data.kaldi_dir import DataDir, DoneMarker, read_kaldi_file, write_data_dir
from espnet_speechllm.datagen import nonspeech
from espnet_speechllm.datagen.progress import run_pool
from espnet_speechllm.utils.cli import MissingInputError, UserError, run_main, setup_logging, str2bool

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
MUSAN_CATEGORIES = ("noise", "music")
SPLITS = ("train", "test", "bank")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True, choices=["musan", "sox"])
    p.add_argument("--data_dir", default="data", help="parent of the three output dirs")
    p.add_argument("--train_name", default="nonspeech_train")
    p.add_argument("--test_name", default="nonspeech_test")
    p.add_argument("--bank_name", default="noise_bank")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", type=str2bool, default=False, help="remake outputs that exist")
    p.add_argument("--log_level", default="INFO")
    g = p.add_argument_group("musan")
    g.add_argument("--musan_dir", default="", help="the MUSAN dir (with noise/ and music/) or its parent")
    g.add_argument("--categories", default="noise music", help="MUSAN categories for train/test")
    g.add_argument("--bank_categories", default="noise", help="MUSAN categories for the noise bank")
    g.add_argument("--test_ratio", type=float, default=0.1, help="fraction of files (per category) for test")
    g.add_argument("--min_chunk_seconds", type=float, default=2.0)
    g.add_argument("--max_chunk_seconds", type=float, default=10.0)
    g.add_argument("--max_train_utts", type=int, default=0, help="cap (random subset; 0: no cap)")
    g.add_argument("--max_test_utts", type=int, default=0)
    g.add_argument("--max_bank_utts", type=int, default=0)
    g = p.add_argument_group("sox")
    g.add_argument("--audio_dir", default="downloads/nonspeech_sox", help="where synthesized sounds go")
    g.add_argument("--speech_scp", default="", help="wav.scp of speech to time-reverse (none: no reversed speech)")
    g.add_argument("--num_train", type=int, default=300)
    g.add_argument("--num_test", type=int, default=60)
    g.add_argument("--num_bank", type=int, default=100)
    g.add_argument("--min_seconds", type=float, default=1.0)
    g.add_argument("--max_seconds", type=float, default=8.0)
    g.add_argument("--nj", type=int, default=2, help="parallel sox jobs")
    return p


# ----------------------------------------------------------------------------------------------- MUSAN
def find_musan(musan_dir: str, categories: List[str]) -> str:
    if not musan_dir:
        raise UserError("--musan_dir is empty: set MUSAN in db.sh to the MUSAN directory (the one with noise/ and "
                        "music/; https://www.openslr.org/17), or use the sox-synthesized non-speech (--source sox)")
    for cand in (musan_dir, os.path.join(musan_dir, "musan")):
        if all(os.path.isdir(os.path.join(cand, c)) for c in categories):
            return cand
    raise MissingInputError(f"MUSAN not found at {musan_dir}: expected {musan_dir}/{{{','.join(categories)}}}/<source>/"
                            "*.wav (or the same under musan/); download it from https://www.openslr.org/17")


def musan_files(root: str, category: str) -> List[Tuple[str, object]]:
    """(path, soundfile info) of the readable .wav files of a MUSAN category."""
    files = sorted(glob.glob(os.path.join(root, category, "**", "*.wav"), recursive=True))
    out, bad = [], 0
    for path in files:
        try:
            out.append((path, sf.info(path)))
        except Exception as e:  # unreadable header
            bad += 1
            logger.warning("skipping unreadable %s: %s", path, e)
    if bad:
        logger.warning("%s/%s: %d unreadable files skipped", root, category, bad)
    if not out:
        raise MissingInputError(f"no readable .wav files under {root}/{category}/")
    return out


def chunk_entries(path: str, info, rng: random.Random, min_s: float, max_s: float, stats) -> List[Tuple[str, str]]:
    """(chunk id suffix, sox pipe entry) for one file."""
    total = info.frames / info.samplerate
    convert = []
    if info.channels > 1:
        convert += ["remix", "-"]
        stats["downmixed"] += 1
    if info.samplerate != SAMPLE_RATE:
        convert += ["rate", str(SAMPLE_RATE)]
        stats["resampled"] += 1
    chunks, start = [], 0.0
    if total < min_s:
        if total < 0.5:
            stats["too_short"] += 1
            return []
        spans = [(0.0, total)]
    else:
        spans = []
        while total - start >= min_s:
            length = min(rng.uniform(min_s, max_s), total - start)
            spans.append((start, length))
            start += length
    for i, (s, d) in enumerate(spans):
        cmd = ["sox", "-V1", path, "-t", "wav", "-", "trim", f"{s:.3f}", f"{d:.3f}"] + convert
        chunks.append((f"{i:04d}", " ".join(shlex.quote(c) for c in cmd) + " |"))
    return chunks


def build_musan(args) -> Dict[str, Dict[str, Tuple[str, str]]]:
    """{split: {utt: (entry, category)}}"""
    categories = args.categories.split()
    bank_categories = args.bank_categories.split()
    for c in set(categories) | set(bank_categories):
        if c not in MUSAN_CATEGORIES:
            raise UserError(f"unknown MUSAN category {c!r}: use {MUSAN_CATEGORIES} (speech/ is never non-speech)")
    if not 0 < args.min_chunk_seconds <= args.max_chunk_seconds:
        raise UserError("need 0 < --min_chunk_seconds <= --max_chunk_seconds")
    root = find_musan(args.musan_dir, sorted(set(categories) | set(bank_categories)))
    out: Dict[str, Dict[str, Tuple[str, str]]] = {s: {} for s in SPLITS}
    stats = collections.Counter()
    for cat in sorted(set(categories) | set(bank_categories)):
        files = musan_files(root, cat)
        rng = random.Random(f"{args.seed}:split:{cat}")
        order = files[:]
        rng.shuffle(order)
        n_test = max(1, round(args.test_ratio * len(order))) if len(order) > 1 and args.test_ratio > 0 else 0
        for k, (path, info) in enumerate(order):
            stem = os.path.splitext(os.path.basename(path))[0]
            chunks = chunk_entries(path, info, random.Random(f"{args.seed}:chunk:{path}"), args.min_chunk_seconds,
                                   args.max_chunk_seconds, stats)
            is_test = k < n_test
            for suffix, entry in chunks:
                utt = f"{stem}-{suffix}"
                if is_test:
                    if cat in categories:
                        out["test"][utt] = (entry, cat)
                else:
                    if cat in categories:
                        out["train"][utt] = (entry, cat)
                    if cat in bank_categories:
                        out["bank"][utt] = (entry, cat)
        logger.info("%s/%s: %d files (%d for test)", root, cat, len(files), n_test)
    for what, n in sorted(stats.items()):
        logger.info("%d files %s", n, {"downmixed": "are multi-channel: mixed down to mono",
                                      "resampled": f"are not {SAMPLE_RATE} Hz: resampled by sox",
                                      "too_short": "are shorter than 0.5 s: skipped"}[what])
    for split, cap in (("train", args.max_train_utts), ("test", args.max_test_utts), ("bank", args.max_bank_utts)):
        if cap and len(out[split]) > cap:
            keep = random.Random(f"{args.seed}:cap:{split}").sample(sorted(out[split]), cap)
            out[split] = {u: out[split][u] for u in sorted(keep)}
    return out


# ------------------------------------------------------------------------------------------------- sox
def build_sox(args) -> Dict[str, Dict[str, Tuple[str, str]]]:
    if not 0 < args.min_seconds <= args.max_seconds:
        raise UserError("need 0 < --min_seconds <= --max_seconds")
    speech: List[str] = []
    if args.speech_scp:
        speech = [v for _, v in sorted(read_kaldi_file(args.speech_scp).items())]
        if len(speech) < 2:
            raise UserError(f"{args.speech_scp}: need at least 2 utterances to reverse")
    half = len(speech) // 2  # train reverses the first half, test the second
    sources = {"train": speech[:half], "test": speech[half:], "bank": []}
    sizes = {"train": args.num_train, "test": args.num_test, "bank": args.num_bank}
    bank_kinds = nonspeech.NOISE_KINDS + ("hum", "noise_tone")
    audio_dir = os.path.abspath(args.audio_dir)
    jobs = []
    for split in SPLITS:
        rng = random.Random(f"{args.seed}:sox:{split}")
        for i in range(sizes[split]):
            if split == "bank":
                kind = rng.choice(bank_kinds)
            else:
                kind = nonspeech.random_kind(rng, with_speech=bool(sources[split]))
            utt = f"ns{split}-{kind.replace('_', '')}-{i:05d}"
            src = rng.choice(sources[split]) if kind == "reversed_speech" else None
            dur = round(rng.uniform(args.min_seconds, args.max_seconds), 2)
            jobs.append((split, utt, kind, dur, src, os.path.join(audio_dir, split, f"{utt}.wav"),
                         f"{args.seed}:sox:{utt}"))

    def run(job):
        split, utt, kind, dur, src, path, seed = job
        nonspeech.make_nonspeech(path, kind, dur, random.Random(seed), speech_entry=src)

    for split in SPLITS:
        shutil.rmtree(os.path.join(audio_dir, split), ignore_errors=True)
    for _ in run_pool(run, jobs, args.nj, "sox non-speech", logger, threads=True):
        pass
    out: Dict[str, Dict[str, Tuple[str, str]]] = {s: {} for s in SPLITS}
    for split, utt, kind, _, _, path, _ in jobs:
        out[split][utt] = (path, kind)
    return out


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    start = time.time()
    names = {"train": args.train_name, "test": args.test_name, "bank": args.bank_name}
    dirs = {s: os.path.join(args.data_dir, n) for s, n in names.items()}
    settings = {k: v for k, v in vars(args).items() if k not in ("force", "log_level")}
    if args.source == "musan":
        settings = {k: v for k, v in settings.items() if k not in ("audio_dir", "speech_scp", "num_train",
                                                                  "num_test", "num_bank", "min_seconds",
                                                                  "max_seconds", "nj")}
    else:
        settings = {k: v for k, v in settings.items() if k not in ("musan_dir", "categories", "bank_categories",
                                                                  "test_ratio", "min_chunk_seconds",
                                                                  "max_chunk_seconds", "max_train_utts",
                                                                  "max_test_utts", "max_bank_utts")}
    marker = DoneMarker(os.path.join(dirs["test"], ".nonspeech.done"), settings, force=args.force,
                        what="non-speech corpus")
    if marker.start(list(dirs.values())):
        return
    out = build_musan(args) if args.source == "musan" else build_sox(args)
    test_sources = {e for e, _ in out["test"].values()}
    if any(e in test_sources for e, _ in out["bank"].values()):
        raise AssertionError("noise bank and non-speech test share audio")
    for split in SPLITS:
        if not out[split]:
            raise UserError(f"{dirs[split]} would be empty; check the MUSAN layout and the size options")
        items = out[split]
        data = DataDir(wav_scp={u: e for u, (e, _) in items.items()}, utt2spk={u: u for u in items},
                       text={u: "" for u in items}, extra={"utt2category": {u: c for u, (_, c) in items.items()}})
        write_data_dir(dirs[split], data)
        counts = collections.Counter(c for _, c in items.values())
        logger.info("%s: %d utterances (%s)", dirs[split], len(items),
                    ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    marker.write()
    logger.info("non-speech corpus done in %.0f s", time.time() - start)


if __name__ == "__main__":
    run_main(main)
