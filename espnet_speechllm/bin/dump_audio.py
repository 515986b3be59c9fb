"""Dump + filter (stage 6): materializes the audio of a data dir as kaldiio arks and drops what cannot
be trained or decoded on.

Reads every wav.scp entry (audio path, "x.ark:offset", or "cmd |" pipe), checks it (nothing is resampled),
and writes <out_dir>/data/wav.<n>.ark (+ .scp; 16-bit wav, or flac with --audio_format flac: about half the size), <out_dir>/{wav.scp,text,utt2spk,spk2utt,utt2num_samples}
and the other utt2* files of the source. Dropped utterances are counted per reason and listed in
<out_dir>/dropped_utts.txt as "utt reason source":
  missing_file       the audio file does not exist
  unreadable         the file or pipe output is not audio (corrupt, command failed)
  wrong_sample_rate  not --fs Hz
  not_mono           more than one channel
  empty_audio        no samples
  truncated          a wav file holds less audio than its header says (a partial copy or download)
  too_short/too_long outside --min_wav_duration/--max_wav_duration (seconds; 0 / inf: no limit)
A transcript that is not UTF-8 is an error naming the file and line. A transcript that is empty (utt id
alone) is kept: it is the target of non-speech utterances.

    python -m espnet_speechllm.bin.dump_audio --data_dir data/train_final --out_dir dump/raw/train_final \\
        --min_wav_duration 0.1 --max_wav_duration 20 --nj 2
"""
import argparse
import hashlib
import logging
import math
import os
import time
from typing import List, Optional, Tuple

import kaldiio
import numpy as np

from espnet_speechllm.data.audio_io import AudioReadError, entry_kind, read_audio, wav_truncation
from espnet_speechllm.data.kaldi_dir import DataDir, DoneMarker, read_data_dir, read_kaldi_file, write_data_dir
from espnet_speechllm.datagen.progress import Failures, run_pool
from espnet_speechllm.utils.cli import UserError, run_main, setup_logging, str2bool

logger = logging.getLogger(__name__)

REASONS = ("missing_file", "unreadable", "wrong_sample_rate", "not_mono", "empty_audio", "truncated", "too_short",
           "too_long")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", required=True, help="source data dir (wav.scp, text, utt2spk)")
    p.add_argument("--out_dir", required=True, help="dump dir, e.g. dump/raw/<set>")
    p.add_argument("--fs", type=int, default=16000, help="required sampling rate")
    p.add_argument("--min_wav_duration", type=float, default=0.0, help="drop shorter utterances (s; 0: no limit)")
    p.add_argument("--max_wav_duration", type=float, default=math.inf, help="drop longer utterances (s; inf: no limit)")
    p.add_argument("--nj", type=int, default=2, help="parallel reader processes = number of arks")
    p.add_argument("--audio_format", default="wav", choices=["wav", "flac"], help="audio format inside the arks")
    p.add_argument("--force", type=str2bool, default=False, help="remake an existing dump")
    p.add_argument("--log_level", default="INFO")
    return p


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


class ArkWriter:
    """Appends (rate, int16 samples) to one ark and its scp: wav through kaldiio.WriteHelper, flac through
    kaldiio.save_ark (both read back with kaldiio.load_mat)."""

    def __init__(self, ark: str, scp: str, audio_format: str):
        self.audio_format = audio_format
        if audio_format == "wav":
            self.helper = kaldiio.WriteHelper(f"ark,scp:{ark},{scp}", write_function="soundfile")
        else:
            self.ark, self.scp = open(ark, "wb"), open(scp, "w", encoding="utf-8")

    def __call__(self, key: str, rate: int, samples: np.ndarray) -> None:
        if self.audio_format == "wav":
            self.helper(key, (rate, samples))
        else:
            kaldiio.save_ark(self.ark, {key: (rate, samples)}, scp=self.scp, write_function="soundfile",
                                  write_kwargs={"format": "flac", "subtype": "PCM_16"})

    def close(self) -> None:
        if self.audio_format == "wav":
            self.helper.close()
        else:
            self.ark.close()
            self.scp.close()


def _fingerprint(*paths: str) -> str:
    h = hashlib.sha1()
    for p in paths:
        if os.path.isfile(p):
            with open(p, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    start = time.time()
    src, out = args.data_dir.rstrip("/"), args.out_dir.rstrip("/")
    if args.min_wav_duration > args.max_wav_duration:
        raise UserError(f"--min_wav_duration {args.min_wav_duration} > --max_wav_duration {args.max_wav_duration}")
    settings = dict(data_dir=os.path.abspath(src), fs=args.fs, audio_format=args.audio_format,
                    min_wav_duration=args.min_wav_duration,
                    max_wav_duration=str(args.max_wav_duration),
                    source_files_checksum=_fingerprint(f"{src}/wav.scp", f"{src}/text", f"{src}/utt2spk"))
    marker = DoneMarker(f"{out}/.done", settings, force=args.force, what=out)
    if marker.start([out], made="dumped"):
        return
    # transcripts first: a bad byte is an error naming file and line
    if os.path.isfile(f"{src}/text"):
        read_kaldi_file(f"{src}/text", allow_empty_value=True)
    data = read_data_dir(src)
    os.makedirs(f"{out}/data", exist_ok=True)

    utts = data.utts
    nj = max(1, min(args.nj, len(utts)))
    logger.info("%s -> %s: %d utterances, %d jobs (fs=%d, duration %g-%g s)", src, out, len(utts), nj, args.fs,
                args.min_wav_duration, args.max_wav_duration)
    writers = [ArkWriter(f"{out}/data/wav.{k + 1}.ark", f"{out}/data/wav.{k + 1}.scp", args.audio_format)
               for k in range(nj)]
    kept, num_samples = [], {}
    dropped: List[Tuple[str, str, str]] = []
    failures = Failures()
    try:
        results = run_pool(check_utt, [(u, data.wav_scp[u]) for u in utts], nj, f"dump {out}", logger,
                           initializer=_init, initargs=(args.fs, args.min_wav_duration, args.max_wav_duration),
                           chunksize=4)
        for i, (utt, status, x, msg) in enumerate(results):
            if status == "ok":
                writers[i * nj // len(utts)](utt, args.fs, x)
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
    hours = sum(int(v) for v in num_samples.values()) / args.fs / 3600
    n_empty = sum(1 for u in kept if data.text is not None and data.text[u] == "")
    logger.info("%s: kept %d of %d utterances (%.2f h%s); dropped %d%s in %.0f s", out, len(kept), len(utts), hours,
                f", {n_empty} with empty transcripts" if n_empty else "", len(dropped),
                f" ({', '.join(f'{r}={n}' for r, n, _ in failures.summary(REASONS))}; list: {out}/dropped_utts.txt)"
                if dropped else "", time.time() - start)
    marker.write()


if __name__ == "__main__":
    run_main(main)
