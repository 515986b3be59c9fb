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
from typing import List, Optional

from espnet_speechllm.datagen.noise_augment import add_noise
from espnet_speechllm.utils.cli import run_main, setup_logging, str2bool


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


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    add_noise(args.data_dir, args.noise_dir, args.out_dir, args.audio_dir, args.ratio, args.mode, args.snr_range,
              args.edge_seconds, args.prefix, args.keep_clean, args.seed, args.nj, args.force)


if __name__ == "__main__":
    run_main(main)
