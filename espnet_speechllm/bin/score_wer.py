"""Score one decoded set with NIST sclite and cross-check the WER with jiwer (recipe stage 12).

What is written and checked: ``espnet_speechllm/scoring/score_set.py``. The cross-check fails (exit 1) when the
sclite and jiwer WERs differ by more than ``--max_wer_diff`` beyond what sclite's alignment costs explain.

Example:
  python -m espnet_speechllm.bin.score_wer --ref_text data/test_clean/text \\
      --hyp_text exp/asr_llm/decode_beam4/test_clean/text \\
      --out_dir exp/asr_llm/decode_beam4/test_clean/score_wer
"""

import argparse
from typing import Optional, Sequence

from espnet_speechllm.scoring.score_set import score_set
from espnet_speechllm.utils.cli import run_main, setup_logging, str2bool


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Score ESPnet hypotheses with NIST sclite (WER, Corr/Sub/Del/Ins), "
                                     "cross-check with jiwer, and measure insertions on non-speech sets.")
    parser.add_argument("--ref_text", required=True, help="reference text file (utt_id words...)")
    parser.add_argument("--hyp_text", required=True, help="hypothesis text file (utt_id words...)")
    parser.add_argument("--out_dir", required=True, help="output dir, e.g. exp/<tag>/decode_*/<set>/score_wer")
    parser.add_argument("--utt2spk", default=None, help="speaker of each utterance for sclite's per-speaker tables "
                        "(default: utt2spk next to --ref_text; without one, the utterance id up to its first '-' or '_')")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--utt2num_samples", default=None, help="utterance lengths in samples for hallucination.json "
                       "(default: utt2num_samples, else utt2dur, next to --ref_text)")
    group.add_argument("--utt2dur", default=None, help="utterance durations in seconds (see --utt2num_samples)")
    parser.add_argument("--sample_rate", type=int, default=16000,
                        help="sample rate of --utt2num_samples (default: %(default)s)")
    parser.add_argument("--nonspeech", type=str2bool, default=False, help="the set is non-speech audio: also write "
                        "hallucination.json (always written when every reference is empty; default: %(default)s)")
    parser.add_argument("--max_wer_diff", type=float, default=0.01,
                        help="largest allowed |WER(sclite) - WER(jiwer)|, absolute percent (default: %(default)s)")
    parser.add_argument("--sclite", default=None, help="sclite executable (default: PATH, then sctk's)")
    parser.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="(default: %(default)s)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    score_set(args.ref_text, args.hyp_text, args.out_dir, utt2spk=args.utt2spk, utt2num_samples=args.utt2num_samples,
              utt2dur=args.utt2dur, sample_rate=args.sample_rate, nonspeech=args.nonspeech,
              max_wer_diff=args.max_wer_diff, sclite=args.sclite)


if __name__ == "__main__":
    run_main(main)
