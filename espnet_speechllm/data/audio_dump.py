"""Dump + filter of a data dir's audio (recipe stage 6): every wav.scp entry is read and checked (nothing is
resampled); what can be trained or decoded on goes into kaldiio arks, the rest is dropped with a reason
(``REASONS``) and listed in <out_dir>/dropped_utts.txt. ``bin/dump_audio.py``'s --help describes the outputs."""
import hashlib
import logging
import math
import os
import time
from typing import List, Optional, Tuple

import numpy as np

from espnet_speechllm.data.ark_writer import ArkWriter
from espnet_speechllm.data.audio_io import AudioReadError, entry_kind, read_audio, wav_truncation
from espnet_speechllm.data.kaldi_dir import DataDir, DoneMarker, read_data_dir, read_kaldi_file, write_data_dir
from espnet_speechllm.datagen.progress import Failures, run_pool
from espnet_speechllm.utils.cli import UserError

logger = logging.getLogger(__name__)

REASONS = ("missing_file", "unreadable", "wrong_sample_rate", "not_mono", "empty_audio", "truncated", "too_short",
           "too_long")

# (fs, min s, max s) of the worker processes, set once per process by run_pool's initializer
_LIMITS: Tuple[int, float, float] = (16000, 0.0, math.inf)


def _init(fs: int, min_s: float, max_s: float) -> None:
    global _LIMITS
    _LIMITS = (fs, min_s, max_s)


def check_utt(item: Tuple[str, str]) -> Tuple[str, str, Optional[np.ndarray], str]:
    """(utt, entry) -> (utt, "ok" or drop reason, samples, message)."""
    utt, entry = item
    fs, min_s, max_s = _LIMITS
    try:
        x, rate = read_audio(entry, dtype="int16")
    except AudioReadError as e:
        return utt, e.reason, None, str(e)
    if rate != fs:
        return utt, "wrong_sample_rate", None, f"{rate} Hz"
    if x.ndim > 1:
        if x.shape[1] != 1:
            return utt, "not_mono", None, f"{x.shape[1]} channels"
        x = x[:, 0]
    if x.size == 0:
        return utt, "empty_audio", None, "0 samples"
    if entry_kind(entry) == "file":
        truncated = wav_truncation(entry.strip())
        if truncated:
            return utt, "truncated", None, truncated
    dur = x.size / rate
    if dur < min_s:
        return utt, "too_short", None, f"{dur:.2f} s < {min_s} s"
    if dur > max_s:
        return utt, "too_long", None, f"{dur:.2f} s > {max_s} s"
    return utt, "ok", x, ""


def _fingerprint(*paths: str) -> str:
    h = hashlib.sha1()
    for p in paths:
        if os.path.isfile(p):
            with open(p, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


def dump_audio(data_dir: str, out_dir: str, fs: int = 16000, min_wav_duration: float = 0.0,
               max_wav_duration: float = math.inf, nj: int = 2, audio_format: str = "wav",
               force: bool = False) -> None:
    """Dumps ``data_dir`` into ``out_dir`` (``nj`` reader processes, one ark each); skips a dump done with these
    settings and source files."""
    start = time.time()
    src, out = data_dir.rstrip("/"), out_dir.rstrip("/")
    if min_wav_duration > max_wav_duration:
        raise UserError(f"--min_wav_duration {min_wav_duration} > --max_wav_duration {max_wav_duration}")
    settings = dict(data_dir=os.path.abspath(src), fs=fs, audio_format=audio_format,
                    min_wav_duration=min_wav_duration,
                    max_wav_duration=str(max_wav_duration),
                    source_files_checksum=_fingerprint(f"{src}/wav.scp", f"{src}/text", f"{src}/utt2spk"))
    marker = DoneMarker(f"{out}/.done", settings, force=force, what=out)
    if marker.start([out], made="dumped"):
        return
    # transcripts first: a bad byte is an error naming file and line
    if os.path.isfile(f"{src}/text"):
        read_kaldi_file(f"{src}/text", allow_empty_value=True)
    data = read_data_dir(src)
    os.makedirs(f"{out}/data", exist_ok=True)

    utts = data.utts
    nj = max(1, min(nj, len(utts)))
    logger.info("%s -> %s: %d utterances, %d jobs (fs=%d, duration %g-%g s)", src, out, len(utts), nj, fs,
                min_wav_duration, max_wav_duration)
    writers = [ArkWriter(f"{out}/data/wav.{k + 1}.ark", f"{out}/data/wav.{k + 1}.scp", audio_format)
               for k in range(nj)]
    kept, num_samples = [], {}
    dropped: List[Tuple[str, str, str]] = []
    failures = Failures()
    try:
        results = run_pool(check_utt, [(u, data.wav_scp[u]) for u in utts], nj, f"dump {out}", logger,
                           initializer=_init, initargs=(fs, min_wav_duration, max_wav_duration), chunksize=4)
        for i, (utt, status, x, msg) in enumerate(results):
            if status == "ok":
                writers[i * nj // len(utts)](utt, fs, x)
                kept.append(utt)
                num_samples[utt] = str(x.size)
            else:
                dropped.append((utt, status, data.wav_scp[utt]))
                failures.add(status, f"{utt}: {msg}")
    finally:
        for w in writers:
            w.close()

    scp = {}
    for k in range(nj):
        scp.update(read_kaldi_file(f"{out}/data/wav.{k + 1}.scp"))
    keep = set(kept)
    extra = {"utt2num_samples": num_samples}
    for name in sorted(os.listdir(src)):
        if name.startswith("utt2") and name not in ("utt2spk", "utt2num_samples") and os.path.isfile(f"{src}/{name}"):
            values = read_kaldi_file(f"{src}/{name}", allow_empty_value=True)
            extra[name] = {u: v for u, v in values.items() if u in keep}
    write_data_dir(out, DataDir(wav_scp=scp, utt2spk={u: data.utt2spk[u] for u in kept},
                                text={u: data.text[u] for u in kept} if data.text is not None else None,
                                extra=extra))
    with open(f"{out}/dropped_utts.txt", "w", encoding="utf-8") as f:
        for utt, reason, source in sorted(dropped):
            f.write(f"{utt} {reason} {source}\n")
    with open(f"{out}/feats_type", "w") as f:
        f.write("raw\n")
    for reason, n, example in failures.summary(REASONS):
        logger.warning("%s: dropped %d utterances: %s (e.g. %s)", out, n, reason, example)
    if not kept:
        raise UserError(f"{out}: every utterance was dropped ({dict(failures.counts)}); see {out}/dropped_utts.txt")
    hours = sum(int(v) for v in num_samples.values()) / fs / 3600
    n_empty = sum(1 for u in kept if data.text is not None and data.text[u] == "")
    logger.info("%s: kept %d of %d utterances (%.2f h%s); dropped %d%s in %.0f s", out, len(kept), len(utts), hours,
                f", {n_empty} with empty transcripts" if n_empty else "", len(dropped),
                f" ({', '.join(f'{r}={n}' for r, n, _ in failures.summary(REASONS))}; list: {out}/dropped_utts.txt)"
                if dropped else "", time.time() - start)
    marker.write()
