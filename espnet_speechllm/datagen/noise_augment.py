"""Noise augmentation of a data dir (recipe stages 4 and 5): noisy copies of a fraction of its utterances, each
mixed with a noise of a noise bank at a random SNR (``mode="mix"``), or with non-speech before and after the
speech, transcript kept (``mode="edges"``). Every random choice depends only on the seed and the utterance id.
``bin/add_noise.py``'s --help describes the outputs."""
import functools
import logging
import os
import random
import shutil
import time
from typing import Tuple

import numpy as np

from espnet_speechllm.data.audio_io import AudioReadError, fit_length, mix_at_snr, read_audio, to_float, write_wav
from espnet_speechllm.data.kaldi_dir import DataDir, DoneMarker, read_data_dir, write_data_dir
from espnet_speechllm.datagen.progress import Failures, run_pool
from espnet_speechllm.utils.cli import UserError

logger = logging.getLogger(__name__)


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


def _read_range(mode: str, snr_range: str, edge_seconds: str) -> Tuple[float, float]:
    """(low, high) of the SNR in dB (mix) or of each edge's length in s (edges); errors name the option."""
    option, value = ("edge_seconds", edge_seconds) if mode == "edges" else ("snr_range", snr_range)
    try:
        lo, hi = (float(v) for v in value.split())
    except ValueError:
        raise UserError(f"--{option} must be two numbers 'low high', got {value!r}") from None
    if lo > hi or (mode == "edges" and lo <= 0):
        raise UserError(f"--{option}: need 0 {'<' if mode == 'edges' else '<='} low <= high, got {lo} {hi}")
    return lo, hi


def add_noise(data_dir: str, noise_dir: str, out_dir: str, audio_dir: str = "", ratio: float = 0.3,
              mode: str = "mix", snr_range: str = "5 20", edge_seconds: str = "0.5 3", prefix: str = "noisy-",
              keep_clean: bool = True, seed: int = 0, nj: int = 2, force: bool = False) -> None:
    """Writes the copies under ``audio_dir`` (default <out_dir>/wav) and lists them, and with ``keep_clean`` the
    originals, in ``out_dir``; skips an ``out_dir`` done with these settings."""
    start = time.time()
    lo, hi = _read_range(mode, snr_range, edge_seconds)
    if not 0.0 <= ratio <= 1.0:
        raise UserError(f"--ratio must be in [0, 1], got {ratio}")
    audio_dir = os.path.abspath(audio_dir or os.path.join(out_dir, "wav"))
    settings = dict(data_dir=os.path.abspath(data_dir), noise_dir=os.path.abspath(noise_dir),
                    audio_dir=audio_dir, ratio=ratio, prefix=prefix, keep_clean=keep_clean, seed=seed)
    settings.update({"snr_range": [lo, hi]} if mode == "mix" else {"mode": "edges", "edge_seconds": [lo, hi]})
    marker = DoneMarker(os.path.join(out_dir, ".done"), settings, force=force)
    if marker.start([out_dir]):
        return
    shutil.rmtree(audio_dir, ignore_errors=True)

    data = read_data_dir(data_dir)
    noise = read_data_dir(noise_dir, require_text=False)
    noise_ids = sorted(noise.wav_scp)
    if not noise_ids:
        raise UserError(f"{noise_dir}/wav.scp is empty")
    utts = data.utts
    n_copies = int(round(ratio * len(utts)))
    chosen = sorted(random.Random(f"{seed}:choose").sample(utts, n_copies))
    jobs = []
    for utt in chosen:
        r = random.Random(f"{seed}:{utt}")
        nid = r.choice(noise_ids)
        snr = round(r.uniform(lo, hi), 2) if mode == "mix" else (round(r.uniform(lo, hi), 2),
                                                                 round(r.uniform(lo, hi), 2))
        copy_id = prefix + utt
        spk = data.utt2spk[utt]
        subdir = prefix + spk
        jobs.append((copy_id, data.wav_scp[utt], nid, noise.wav_scp[nid], snr, r.getrandbits(32),
                     os.path.join(audio_dir, subdir, f"{copy_id}.wav")))
    logger.info("%s: %s %d of %d utterances with %d recordings of %s (%s %g-%g; %d jobs)", data_dir,
                "mixing" if mode == "mix" else "adding non-speech edges to", n_copies, len(utts), len(noise_ids),
                noise_dir, "SNR dB" if mode == "mix" else "seconds per edge", lo, hi, nj)

    status = {}
    failures = Failures()
    for copy_id, st, msg in run_pool(_make_copy, jobs, nj, f"add noise ({mode})", logger, chunksize=8):
        status[copy_id] = st
        if st not in ("ok", "rescaled"):
            failures.add(st, f"{copy_id}: {msg}")
    n_rescaled = sum(st == "rescaled" for st in status.values())
    if n_rescaled:
        logger.info("%d mixtures were scaled down to avoid clipping", n_rescaled)
    for reason, n, example in failures.summary():
        logger.warning("%d copies skipped: %s (e.g. %s)", n, reason, example)

    out = DataDir(wav_scp={}, utt2spk={}, text={} if data.text is not None else None)
    if keep_clean:
        out.wav_scp.update(data.wav_scp)
        out.utt2spk.update(data.utt2spk)
        if data.text is not None:
            out.text.update(data.text)
    made = [j for j in jobs if status.get(j[0]) in ("ok", "rescaled")]
    for copy_id, _, _, _, _, _, path in made:
        src = copy_id[len(prefix):]
        out.wav_scp[copy_id] = path
        out.utt2spk[copy_id] = prefix + data.utt2spk[src]
        if data.text is not None:
            out.text[copy_id] = data.text[src]
    if not out.wav_scp:
        raise UserError(f"{out_dir} would be empty")
    write_data_dir(out_dir, out)
    with open(os.path.join(out_dir, "noisy_copies.txt"), "w", encoding="utf-8") as f:
        for copy_id, _, nid, _, snr, _, _ in made:
            f.write(f"{copy_id} {copy_id[len(prefix):]} {nid} {' '.join(map(str, snr)) if mode == 'edges' else snr}\n")
    marker.write()
    logger.info("%s: %d utterances (%d originals + %d copies) in %.0f s", out_dir, len(out.wav_scp),
                len(data.wav_scp) if keep_clean else 0, len(made), time.time() - start)
