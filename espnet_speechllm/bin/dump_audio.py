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
import math
from typing import List, Optional

from espnet_speechllm.data.audio_dump import dump_audio
from espnet_speechllm.utils.cli import run_main, setup_logging, str2bool


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


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    dump_audio(args.data_dir, args.out_dir, args.fs, args.min_wav_duration, args.max_wav_duration, args.nj,
               args.audio_format, args.force)


if __name__ == "__main__":
    run_main(main)
