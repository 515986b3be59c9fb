"""Dumping what a training YAML's frozen speech encoder computes (recipe stage 8), so training reads it once.

``dump_encoder_outputs`` runs the encoder (or only its waveform CNN, ``encoder_conf.precomputed_frontend``) over the
audio of a stage-6 dump in length-sorted batches and writes feats.ark/.scp, utt2num_frames and the data dir's
text, utt2spk, spk2utt; its done-marker (``dump_settings``) records the encoder settings and the fingerprints of
the data dir and the encoder's model dir, so a changed config, data dir or model is refused, never reused.
"""
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
from espnet_speechllm.utils.cli import MissingInputError, UserError
from espnet_speechllm.utils.fingerprint import fingerprint, model_dir_fingerprints

logger = logging.getLogger(__name__)


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


def _build(name: str, conf: Dict[str, Any], train_config: str) -> AbsEncoder:
    try:
        return build_encoder(name, conf).eval()
    except ValueError as e:
        raise UserError(f"{train_config}: {e}") from e


def build_frozen_encoder(train_config: str) -> AbsEncoder:
    """The config's encoder, or the source of its precomputed encoder; a UserError unless frozen."""
    name, conf, _ = encoder_to_dump(train_config)
    return _build(name, conf, train_config)


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
        prints.update(model_dir_fingerprints(model_dir))
    return prints


def dump_settings(name: str, conf: Dict[str, Any], frontend_only: bool, dtype: str, data_dir: str) -> Dict[str, Any]:
    """What the done-marker records: the encoder settings that shape the outputs, the storage type and the inputs."""
    return {"encoder": frontend_settings(name, conf) if frontend_only else {"name": name, "conf": conf},
            "frontend_only": frontend_only, "dtype": dtype,
            "inputs": input_fingerprints(data_dir, conf.get("model_dir"))}


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


def dump_encoder_outputs(train_config: str, data_dir: str, out_dir: str, dtype: str = "float16",
                         batch_seconds: float = 10.0, device: str = "cpu", force: bool = False) -> None:
    """The whole step: skips a dump done with these settings, refuses one without a marker unless ``force``."""
    name, conf, frontend_only = encoder_to_dump(train_config)
    marker = DoneMarker(os.path.join(out_dir, ".done"), dump_settings(name, conf, frontend_only, dtype, data_dir),
                        force=force, what=out_dir)
    if marker.is_done():
        logger.info(f"{out_dir} is done; skipping (--force true remakes it)")
        return
    if os.path.exists(os.path.join(out_dir, "feats.scp")) and not force:
        raise OutputsExistError(f"{out_dir} holds features without a .done marker; pass --force true")
    wav_scp = read_kaldi_file(os.path.join(data_dir, "wav.scp"))
    if not wav_scp:
        raise UserError(f"{data_dir}/wav.scp is empty")
    encoder = _build(name, conf, train_config)
    os.makedirs(out_dir, exist_ok=True)
    n = dump(encoder, wav_scp, read_num_samples(data_dir, wav_scp), out_dir, dtype, batch_seconds, device,
             frontend_only)
    for copied in ("text", "utt2spk", "spk2utt"):
        if os.path.isfile(os.path.join(data_dir, copied)):
            shutil.copyfile(os.path.join(data_dir, copied), os.path.join(out_dir, copied))
    marker.write()
    dims = encoder.frontend_size() if frontend_only else encoder.output_size()
    logger.info(f"wrote {n} utterances of {'waveform-CNN' if frontend_only else 'encoder'} outputs ({dims} dims, "
                f"{dtype}) to {out_dir}")
