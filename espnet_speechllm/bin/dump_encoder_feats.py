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
import logging
import os
import shutil
from typing import Any, Dict, List, Optional, Tuple

import kaldiio
import torch
from torch.nn.utils.rnn import pad_sequence

from espnet_speechllm.data.audio import SAMPLE_RATE, load_audio
from espnet_speechllm.data.kaldi_dir import (
    DoneMarker,
    OutputsExistError,
    read_kaldi_file,
    read_numbers,
    write_kaldi_file,
)
from espnet_speechllm.datagen.progress import progress
from espnet_speechllm.encoder.abs_encoder import AbsEncoder
from espnet_speechllm.encoder.precomputed import (
    FRONTEND_OUTPUTS,
    dumped_encoder,
    dumped_features,
    frontend_settings,
)
from espnet_speechllm.registry import build_encoder, train_encoder
from espnet_speechllm.utils.cli import MissingInputError, UserError, run_main, setup_logging, str2bool
from espnet_speechllm.utils.fingerprint import fingerprint

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train_config", required=True, help="training YAML whose encoder/encoder_conf to run")
    p.add_argument("--data_dir", required=True, help="dumped data dir (wav.scp, text, utt2spk)")
    p.add_argument("--out_dir", required=True, help="e.g. dump/encoder/<set>")
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"], help="storage type")
    p.add_argument("--batch_seconds", type=float, default=200.0, help="audio seconds per encoder batch")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--force", type=str2bool, default=False, help="remake an existing dump")
    p.add_argument("--log_level", default="INFO")
    return p


def encoder_to_dump(train_config: str) -> Tuple[str, Dict[str, Any], bool]:
    """``(name, conf, frontend_only)`` of the encoder whose computation is dumped: the config's encoder when only
    its waveform CNN is (``precomputed_frontend``), else the frozen encoder itself or a precomputed one's source;
    a UserError when that is not frozen."""
    try:
        name, conf = train_encoder(train_config)
        if dumped_features(name, conf) == FRONTEND_OUTPUTS:
            return name, conf, True
        return (*dumped_encoder(name, conf), False)
    except (ValueError, OSError) as e:
        raise UserError(f"{train_config}: {e}") from e


def build_frozen_encoder(train_config: str) -> AbsEncoder:
    """The config's encoder, or the source of its precomputed encoder; a UserError unless frozen."""
    name, conf, _ = encoder_to_dump(train_config)
    try:
        return build_encoder(name, conf).eval()
    except ValueError as e:
        raise UserError(f"{train_config}: {e}") from e


def length_batches(lengths: Dict[str, int], max_samples: int) -> List[List[str]]:
    """Utterance ids sorted by length, cut into batches of at most ``max_samples`` padded samples."""
    batches, batch, longest = [], [], 0
    for utt in sorted(lengths, key=lengths.get):
        longest_if_added = max(longest, lengths[utt])
        if batch and longest_if_added * (len(batch) + 1) > max_samples:
            batches.append(batch)
            batch, longest_if_added = [], lengths[utt]
        batch.append(utt)
        longest = longest_if_added
    return batches + ([batch] if batch else [])


def input_fingerprints(data_dir: str, model_dir: Optional[str]) -> Dict[str, str]:
    """What the dump is made from: the data dir's key files and the model dir's config and weights."""
    prints = {"data_dir": fingerprint(data_dir)}
    if model_dir and os.path.isdir(model_dir):
        for name in sorted(os.listdir(model_dir)):
            if name.endswith((".json", ".safetensors", ".bin")):
                prints[name] = fingerprint(os.path.join(model_dir, name))
    return prints


def read_num_samples(data_dir: str, wav_scp: Dict[str, str]) -> Dict[str, int]:
    """utt2num_samples of a stage-6 dump (batches are planned from it, the audio is read batch by batch)."""
    path = os.path.join(data_dir, "utt2num_samples")
    if not os.path.isfile(path):
        raise MissingInputError(f"{path} not found: dump the set with stage 6 (espnet_speechllm.bin.dump_audio) first")
    lengths = read_numbers(path, int)
    missing = [u for u in wav_scp if u not in lengths]
    if missing:
        raise UserError(f"{path} has no length for {len(missing)} utterance(s) of wav.scp, e.g. {missing[0]!r}")
    return {u: lengths[u] for u in wav_scp}


@torch.no_grad()
def dump(encoder: torch.nn.Module, wav_scp: Dict[str, str], num_samples: Dict[str, int], out_dir: str, dtype: str,
         batch_seconds: float, device: str, frontend_only: bool = False) -> int:
    encoder.to(device)
    run = encoder.frontend if frontend_only else encoder
    frames: Dict[str, int] = {}
    with kaldiio.WriteHelper(f"ark,scp:{out_dir}/feats.ark,{out_dir}/feats.scp", write_function="numpy") as writer:
        for batch in progress(length_batches(num_samples, int(batch_seconds * SAMPLE_RATE)), desc="encoder batches"):
            audio = [torch.from_numpy(load_audio(u, wav_scp[u])) for u in batch]
            lengths = torch.tensor([len(a) for a in audio])
            wav = pad_sequence(audio, batch_first=True)  # zero-padded (B, longest)
            hidden, hidden_lengths = run(wav.to(device), lengths.to(device))  # (B, T, D), (B,)
            for i, u in enumerate(batch):
                feats = hidden[i, : hidden_lengths[i]].float().cpu().numpy().astype(dtype)
                writer(u, feats)
                frames[u] = feats.shape[0]
    # Batches run in length order; Kaldi files (and ESPnet's line-by-line readers) want utterance order.
    scp = os.path.join(out_dir, "feats.scp")
    write_kaldi_file(scp, read_kaldi_file(scp))
    with open(os.path.join(out_dir, "utt2num_frames"), "w", encoding="utf-8") as f:
        f.writelines(f"{u} {frames[u]}\n" for u in sorted(frames, key=str.encode))
    return len(frames)


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    name, conf, frontend_only = encoder_to_dump(args.train_config)
    marker = DoneMarker(os.path.join(args.out_dir, ".done"),
                        {"encoder": frontend_settings(name, conf) if frontend_only else {"name": name, "conf": conf},
                         "frontend_only": frontend_only, "dtype": args.dtype,
                         "inputs": input_fingerprints(args.data_dir, conf.get("model_dir"))},
                        force=args.force, what=args.out_dir)
    if marker.is_done():
        logger.info(f"{args.out_dir} is done; skipping (--force true remakes it)")
        return
    if os.path.exists(os.path.join(args.out_dir, "feats.scp")) and not args.force:
        raise OutputsExistError(f"{args.out_dir} holds features without a .done marker; pass --force true")
    wav_scp = read_kaldi_file(os.path.join(args.data_dir, "wav.scp"))
    if not wav_scp:
        raise UserError(f"{args.data_dir}/wav.scp is empty")
    try:
        encoder = build_encoder(name, conf).eval()
    except ValueError as e:
        raise UserError(f"{args.train_config}: {e}") from e
    os.makedirs(args.out_dir, exist_ok=True)
    n = dump(encoder, wav_scp, read_num_samples(args.data_dir, wav_scp), args.out_dir, args.dtype,
             args.batch_seconds, args.device, frontend_only)
    for name in ("text", "utt2spk", "spk2utt"):
        if os.path.isfile(os.path.join(args.data_dir, name)):
            shutil.copyfile(os.path.join(args.data_dir, name), os.path.join(args.out_dir, name))
    marker.write()
    dims = encoder.frontend_size() if frontend_only else encoder.output_size()
    logger.info(f"wrote {n} utterances of {'waveform-CNN' if frontend_only else 'encoder'} outputs ({dims} dims, "
                f"{args.dtype}) to {args.out_dir}")


if __name__ == "__main__":
    run_main(main)
