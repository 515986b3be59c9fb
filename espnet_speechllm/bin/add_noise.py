"""Noise augmentation (stage 4): noisy copies of a fraction of a data dir's utterances, each mixed with a
random noise of the noise bank at an SNR drawn uniformly from --snr_range.

With --mode edges (stage 5) a copy is instead the utterance with non-speech before and after it (pieces of
--noise_dir's recordings, each --edge_seconds long, at their own level), transcript kept: the model learns that
non-speech around speech is not a reason to output nothing (paper Sec. 2.3 trains on non-speech alone).

The copies are written as 16-bit wav files under --audio_dir and listed in --out_dir with ids (utterance
and speaker) prefixed by --prefix; with --keep_clean true (default) the original utterances are listed
too, so --out_dir is the augmented training set. Which utterances, which noise, the SNR and the noise
offset depend only on --seed and the utterance id. <out_dir>/noisy_copies.txt records
"copy source noise snr_db" per copy.

    python -m espnet_speechllm.bin.add_noise --data_dir data/train_sp --noise_dir data/noise_bank \\
        --out_dir data/train_sp_noisy --audio_dir dump/augment/train_sp_noisy --ratio 0.3 --snr_range "5 20"
    python -m espnet_speechllm.bin.add_noise --mode edges --data_dir data/train_sp_noisy \
        --noise_dir data/nonspeech_train --out_dir data/train_sp_noisy_edges --ratio 0.1 --prefix edges-
"""
import argparse
import functools
import logging
import os
import random
import shutil
import time
from typing import List, Optional, Tuple

import numpy as np

from espnet_speechllm.data.audio_io import AudioReadError, fit_length, mix_at_snr, read_audio, to_float, write_wav
from espnet_speechllm.data.kaldi_dir import DataDir, DoneMarker, read_data_dir, write_data_dir
from espnet_speechllm.datagen.progress import Failures, run_pool
from espnet_speechllm.utils.cli import UserError, run_main, setup_logging, str2bool

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", required=True, help="source data dir (wav.scp, text, utt2spk)")
    p.add_argument("--noise_dir", required=True, help="noise bank data dir (wav.scp)")
    p.add_argument("--out_dir", required=True, help="output data dir")
    p.add_argument("--audio_dir", default="", help="where the noisy wav files go (default: <out_dir>/wav)")
    p.add_argument("--ratio", type=float, default=0.3, help="fraction of utterances that get a noisy copy")
    p.add_argument("--mode", default="mix", choices=["mix", "edges"],
                   help="mix: noise added at an SNR; edges: non-speech before and after the speech")
    p.add_argument("--snr_range", default="5 20", help="'low high' SNR range in dB (--mode mix)")
    p.add_argument("--edge_seconds", default="0.5 3", help="'low high' length of each edge in s (--mode edges)")
    p.add_argument("--prefix", default="noisy-", help="prefix of the copies' utterance and speaker ids")
    p.add_argument("--keep_clean", type=str2bool, default=True, help="list the original utterances too")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nj", type=int, default=2, help="parallel worker processes")
    p.add_argument("--force", type=str2bool, default=False, help="remake outputs that exist")
    p.add_argument("--log_level", default="INFO")
    return p


@functools.lru_cache(maxsize=64)
def _noise(entry: str) -> np.ndarray:
    x, rate = read_audio(entry)
    if rate != 16000:
        raise AudioReadError("noise_not_16k", f"noise is {rate} Hz, not 16000: {entry}")
    if x.ndim > 1:
        x = x.mean(axis=1).astype(x.dtype)
    return to_float(x)


def _make_copy(job: Tuple[str, str, str, str, object, int, str]) -> Tuple[str, str, str]:
    """Returns (copy id, status, message); status is "ok", "rescaled" or a failure reason. The fifth field is
    the SNR (mix) or the (before, after) edge lengths in seconds (edges)."""
    copy_id, speech_entry, noise_id, noise_entry, snr, seed, out_path = job
    try:
        x, rate = read_audio(speech_entry)
    except AudioReadError as e:
        return copy_id, f"speech_{e.reason}", str(e)
    if rate != 16000:
        return copy_id, "speech_not_16k", f"{rate} Hz: {speech_entry}"
    if x.ndim > 1:
        return copy_id, "speech_not_mono", speech_entry
    if x.size == 0:
        return copy_id, "speech_empty", speech_entry
    try:
        noise = _noise(noise_entry)
        if isinstance(snr, tuple):  # edges: non-speech pieces around the speech, at the level they have
            rng = np.random.default_rng(seed)
            before, after = (fit_length(noise, int(sec * rate), rng) for sec in snr)
            write_wav(out_path, np.concatenate([before, to_float(x), after]), rate)
            return copy_id, "ok", ""
        mix, rescaled = mix_at_snr(to_float(x), noise, snr, np.random.default_rng(seed))
    except AudioReadError as e:
        return copy_id, e.reason if e.reason.startswith("noise") else f"noise_{e.reason}", f"{noise_id}: {e}"
    except ValueError as e:
        return copy_id, "noise_silent", f"{noise_id}: {e}"
    write_wav(out_path, mix, rate)
    return copy_id, "rescaled" if rescaled else "ok", ""


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    start = time.time()
    option = "edge_seconds" if args.mode == "edges" else "snr_range"
    try:
        lo, hi = (float(v) for v in getattr(args, option).split())
    except ValueError:
        raise UserError(f"--{option} must be two numbers 'low high', got {getattr(args, option)!r}") from None
    if lo > hi or (args.mode == "edges" and lo <= 0):
        raise UserError(f"--{option}: need 0 {'<' if args.mode == 'edges' else '<='} low <= high, got {lo} {hi}")
    if not 0.0 <= args.ratio <= 1.0:
        raise UserError(f"--ratio must be in [0, 1], got {args.ratio}")
    audio_dir = os.path.abspath(args.audio_dir or os.path.join(args.out_dir, "wav"))
    settings = dict(data_dir=os.path.abspath(args.data_dir), noise_dir=os.path.abspath(args.noise_dir),
                    audio_dir=audio_dir, ratio=args.ratio, prefix=args.prefix,
                    keep_clean=args.keep_clean, seed=args.seed)
    settings.update({"snr_range": [lo, hi]} if args.mode == "mix" else {"mode": "edges", "edge_seconds": [lo, hi]})
    marker = DoneMarker(os.path.join(args.out_dir, ".done"), settings, force=args.force)
    if marker.start([args.out_dir]):
        return
    shutil.rmtree(audio_dir, ignore_errors=True)

    data = read_data_dir(args.data_dir)
    noise = read_data_dir(args.noise_dir, require_text=False)
    noise_ids = sorted(noise.wav_scp)
    if not noise_ids:
        raise UserError(f"{args.noise_dir}/wav.scp is empty")
    utts = data.utts
    n_copies = int(round(args.ratio * len(utts)))
    chosen = sorted(random.Random(f"{args.seed}:choose").sample(utts, n_copies))
    jobs = []
    for utt in chosen:
        r = random.Random(f"{args.seed}:{utt}")
        nid = r.choice(noise_ids)
        snr = round(r.uniform(lo, hi), 2) if args.mode == "mix" else (round(r.uniform(lo, hi), 2),
                                                                         round(r.uniform(lo, hi), 2))
        copy_id = args.prefix + utt
        spk = data.utt2spk[utt]
        subdir = args.prefix + spk
        jobs.append((copy_id, data.wav_scp[utt], nid, noise.wav_scp[nid], snr, r.getrandbits(32),
                     os.path.join(audio_dir, subdir, f"{copy_id}.wav")))
    logger.info("%s: %s %d of %d utterances with %d recordings of %s (%s %g-%g; %d jobs)", args.data_dir,
                "mixing" if args.mode == "mix" else "adding non-speech edges to", n_copies, len(utts), len(noise_ids),
                args.noise_dir, "SNR dB" if args.mode == "mix" else "seconds per edge", lo, hi, args.nj)

    status = {}
    failures = Failures()
    for copy_id, st, msg in run_pool(_make_copy, jobs, args.nj, f"add noise ({args.mode})", logger, chunksize=8):
        status[copy_id] = st
        if st not in ("ok", "rescaled"):
            failures.add(st, f"{copy_id}: {msg}")
    n_rescaled = sum(st == "rescaled" for st in status.values())
    if n_rescaled:
        logger.info("%d mixtures were scaled down to avoid clipping", n_rescaled)
    for reason, n, example in failures.summary():
        logger.warning("%d copies skipped: %s (e.g. %s)", n, reason, example)

    out = DataDir(wav_scp={}, utt2spk={}, text={} if data.text is not None else None)
    if args.keep_clean:
        out.wav_scp.update(data.wav_scp)
        out.utt2spk.update(data.utt2spk)
        if data.text is not None:
            out.text.update(data.text)
    made = [j for j in jobs if status.get(j[0]) in ("ok", "rescaled")]
    for copy_id, _, _, _, _, _, path in made:
        src = copy_id[len(args.prefix):]
        out.wav_scp[copy_id] = path
        out.utt2spk[copy_id] = args.prefix + data.utt2spk[src]
        if data.text is not None:
            out.text[copy_id] = data.text[src]
    if not out.wav_scp:
        raise UserError(f"{args.out_dir} would be empty")
    write_data_dir(args.out_dir, out)
    with open(os.path.join(args.out_dir, "noisy_copies.txt"), "w", encoding="utf-8") as f:
        for copy_id, _, nid, _, snr, _, _ in made:
            f.write(f"{copy_id} {copy_id[len(args.prefix):]} {nid} {' '.join(map(str, snr)) if args.mode == 'edges' else snr}\n")
    marker.write()
    logger.info("%s: %d utterances (%d originals + %d copies) in %.0f s", args.out_dir, len(out.wav_scp),
                len(data.wav_scp) if args.keep_clean else 0, len(made), time.time() - start)


if __name__ == "__main__":
    run_main(main)
