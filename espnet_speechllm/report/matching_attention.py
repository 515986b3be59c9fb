"""The matching loss's cross-attention map of one utterance, text tokens (query) over adapter frames, drawn as a
PNG with the weights next to it (.npy). A trained matching loss attends along a diagonal: each transcript token to
the frames where it is spoken; how diagonal the map is, is logged.
"""
import logging
import os
from typing import List

import numpy as np
import torch

from espnet_speechllm.data.audio import SAMPLE_RATE, load_audio
from espnet_speechllm.data.kaldi_dir import read_kaldi_file
from espnet_speechllm.encoder.precomputed import restore_source_encoder
from espnet_speechllm.report.plots import plot_attention_map
from espnet_speechllm.tasks.speechllm import SpeechLLMTask
from espnet_speechllm.utils.cli import UserError

logger = logging.getLogger(__name__)


def first_utterance(data_dir: str, utt_id: str = ""):
    """(utt_id, wav.scp entry, transcript) of ``utt_id``, or of the first utterance with a transcript."""
    texts = read_kaldi_file(os.path.join(data_dir, "text"), allow_empty_value=True)  # non-speech: empty
    for key, entry in read_kaldi_file(os.path.join(data_dir, "wav.scp")).items():
        if (utt_id and key == utt_id) or (not utt_id and texts.get(key)):
            return key, entry, texts.get(key, "")
    raise UserError(f"{data_dir}: " + (f"no utterance {utt_id!r}" if utt_id else "no utterance with a transcript"))


def transcript_ids(train_args, transcript: str) -> List[int]:
    """The transcript's token ids as training made them (``text_case`` folding included)."""
    preprocess = SpeechLLMTask.build_preprocess_fn(train_args, train=False)
    if preprocess is None:
        raise UserError("the experiment was trained with use_preprocessor false: its transcripts were not tokenized")
    return preprocess("utt", {"text": transcript})["text"].tolist()


@torch.no_grad()
def attention_map(model, speech: np.ndarray, ids: List[int]):
    """(L tokens, T' frames) weights and the token strings."""
    tokenizer = model.llm.tokenizer
    wav = torch.from_numpy(speech).float()[None]
    emb, emb_lengths = model.encode_speech(wav, torch.tensor([wav.size(1)]))
    text_emb = model.llm.embed(torch.tensor([ids])).to(emb.dtype)
    _, weights = model.matching_loss.align(text_emb, emb, emb_lengths, need_weights=True)
    return weights[0].float().numpy(), tokenizer.convert_ids_to_tokens(ids)


def plot_matching_attention(exp_dir: str, model_file: str, data_dir: str, utt_id: str, out: str) -> None:
    """Write ``out`` (PNG) and its .npy for ``utt_id`` of ``data_dir`` (empty: the first utterance with a
    transcript), with the model ``exp_dir/model_file``; nothing for a model trained without the matching loss."""
    model, train_args = SpeechLLMTask.build_model_from_file(
        os.path.join(exp_dir, "config.yaml"), os.path.join(exp_dir, model_file), device="cpu"
    )
    if model.matching_loss is None:
        logger.info(f"{exp_dir} was trained without the matching loss: no attention map to plot")
        return
    restore_source_encoder(model).eval()  # reads audio even when trained on dumped encoder outputs
    utt_id, entry, transcript = first_utterance(data_dir, utt_id)
    speech = load_audio(utt_id, entry)
    weights, tokens = attention_map(model, speech, transcript_ids(train_args, transcript))
    frame_seconds = (len(speech) / SAMPLE_RATE) / weights.shape[1]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    plot_attention_map(weights, tokens, frame_seconds, f"matching-loss cross-attention: {utt_id}", out)
    np.save(os.path.splitext(out)[0] + ".npy", weights)
    # How diagonal the map is: correlation of each token's attention peak with its position.
    peaks = weights.argmax(axis=1)
    corr = float(np.corrcoef(np.arange(len(peaks)), peaks)[0, 1]) if len(peaks) > 2 and peaks.std() > 0 else 0.0
    logger.info(f"wrote {out} ({len(tokens)} tokens x {weights.shape[1]} frames); "
                f"peak-position/token-index correlation {corr:.2f}")
