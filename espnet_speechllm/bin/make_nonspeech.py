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
from typing import List, Optional

from espnet_speechllm.datagen.nonspeech_corpus import make_nonspeech_corpus
from espnet_speechllm.utils.cli import run_main, setup_logging, str2bool


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


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    make_nonspeech_corpus(args.source, args.data_dir, args.train_name, args.test_name, args.bank_name, args.seed,
                          vars(args), args.force)


if __name__ == "__main__":
    run_main(main)
