"""Builds the synthetic corpus of the synth_llm recipe (stage 1): espeak-ng speech of generated sentences.

Outputs (Kaldi data dirs with wav.scp, text, utt2spk, spk2utt; audio under --audio_dir):
  <data_dir>/train                 seen voices, train sentences
  <data_dir>/dev                   seen voices, dev sentences
  <data_dir>/test_clean            seen voices, unseen (test) sentences
  <data_dir>/test_other            unseen voices/variants, rates outside the training range, additive
                                   noise (white/pink/brown, SNR 5-20 dB) on half of the utterances
  <data_dir>/test_nonspeech_edges  seen voices, test sentences with 0.5-3 s of non-speech (noise, tones,
                                   reversed speech, ...) before and after the speech
  <data_dir>/pretrain_encoder      speech + transcripts for pretraining the encoder (own sentences)
  <data_dir>/local/lm_text.txt     LLM text-pretraining sentences, one per line
  <data_dir>/local/synth_corpus.json  sizes, voices and durations per set
Sentence pools of all sets are disjoint. Transcripts are upper case, like LibriSpeech.

    python -m espnet_speechllm.bin.synth_corpus --preset debug --data_dir data --audio_dir downloads/synth
"""
import argparse
from typing import List, Optional

from espnet_speechllm.datagen.corpus_plan import PRESETS, SETS, set_sizes
from espnet_speechllm.datagen.synth_corpus import synth_corpus
from espnet_speechllm.utils.cli import run_main, setup_logging, str2bool


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default="data", help="where the Kaldi data dirs go")
    p.add_argument("--audio_dir", default="downloads/synth_corpus", help="where the wav files go")
    p.add_argument("--preset", default="default", choices=sorted(PRESETS), help="set sizes")
    for name in SETS + ["lm_text"]:
        p.add_argument(f"--num_{name}", type=int, default=None, help=f"number of {name} utterances/sentences "
                       "(default: from --preset)")
    p.add_argument("--seed", type=int, default=0, help="random seed (sentences, voices, rates, noise)")
    p.add_argument("--nj", type=int, default=2, help="parallel synthesis jobs")
    p.add_argument("--force", type=str2bool, default=False, help="remake outputs that exist")
    p.add_argument("--log_level", default="INFO")
    return p


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    sizes = set_sizes(args.preset, {name: getattr(args, f"num_{name}") for name in SETS + ["lm_text"]})
    synth_corpus(args.data_dir, args.audio_dir, sizes, args.seed, args.nj, args.force)


if __name__ == "__main__":
    run_main(main)
