"""Dump what a training YAML's speech encoder computes the same way every epoch, so training reads it once.

Reads the ``encoder``/``encoder_conf`` of a training YAML and runs, over the audio of a dumped data dir in
length-sorted batches,
  - a FROZEN encoder whole (``encoder: precomputed``, or a frozen encoder): its outputs; or
  - only its frozen waveform CNN (``encoder_conf.precomputed_frontend: true``): the transformer layers then run,
    and fine-tune (LoRA), in the training loop on these features;
and writes
    <out_dir>/feats.ark, feats.scp   (T, D) per utterance, kaldiio "npy" format in --dtype
    <out_dir>/utt2num_frames, and text, utt2spk, spk2utt copied from --data_dir
and a .done marker; an existing dump is not overwritten without --force true. Train on it with
``encoder: precomputed`` (espnet_speechllm/encoder/precomputed.py shows the YAML) and
``--train_data_path_and_name_and_type <out_dir>/feats.scp,speech,kaldi_ark``.

Disk: HuBERT-large gives 50 frames x 1024 values per second, i.e. 100 kB/s in float16 (960 h of
LibriSpeech: ~350 GB, x3 with speed perturbation); its CNN 50 x 512 values, 50 kB/s.
The done-marker records the encoder settings and the fingerprints of the data dir and the encoder's model dir,
so a changed config, data dir or model is refused (remake with --force true), never reused.

    python -m espnet_speechllm.bin.dump_encoder_feats --train_config conf/train_frozen_encoder.yaml \\
        --data_dir dump/raw/train_final --out_dir dump/encoder/train_final --device cuda
"""
import argparse
from typing import List, Optional

from espnet_speechllm.encoder.dump import dump_encoder_outputs
from espnet_speechllm.utils.cli import run_main, setup_logging, str2bool


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train_config", required=True, help="training YAML whose encoder/encoder_conf to run")
    p.add_argument("--data_dir", required=True, help="dumped data dir (wav.scp, text, utt2spk)")
    p.add_argument("--out_dir", required=True, help="e.g. dump/encoder/<set>")
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"], help="storage type")
    # Small batches: on a CPU, 200 s batches spent half their time in the kernel allocating the big padded
    # tensors (measured on 1500 utterances of the synth recipe: 8 and 20 s batches equal within noise, 200 s 1.6x
    # slower in wall time). A GPU may want more.
    p.add_argument("--batch_seconds", type=float, default=10.0, help="audio seconds per encoder batch")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--force", type=str2bool, default=False, help="remake an existing dump")
    p.add_argument("--log_level", default="INFO")
    return p


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    dump_encoder_outputs(args.train_config, args.data_dir, args.out_dir, args.dtype, args.batch_seconds, args.device,
                         args.force)


if __name__ == "__main__":
    run_main(main)
