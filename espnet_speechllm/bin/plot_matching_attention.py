"""Plot the matching loss's cross-attention map of one utterance: text tokens (query) over adapter frames.

A trained matching loss attends along a diagonal: each transcript token to the frames where it is spoken.
Writes a PNG (token rows x time columns, seconds on the x axis) and, next to it, the weights as .npy.

Example:
  python -m espnet_speechllm.bin.plot_matching_attention --exp_dir exp/asr_llm_train \\
      --data_dir dump/raw/test_clean --out exp/asr_llm_train/images/matching_attention.png
"""
import logging
import os
from typing import List

import numpy as np
import torch

from espnet_speechllm.data.audio import SAMPLE_RATE, load_audio
from espnet_speechllm.data.kaldi_dir import read_kaldi_file
from espnet_speechllm.encoder.precomputed import restore_source_encoder
from espnet_speechllm.report.plots import pyplot
from espnet_speechllm.tasks.speechllm import SpeechLLMTask
from espnet_speechllm.utils.cli import UserError, make_parser, run_main, setup_logging

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


def get_parser():
    parser = make_parser(__doc__)
    parser.add_argument("--exp_dir", required=True, help="experiment dir with config.yaml and the model file")
    parser.add_argument("--model_file", default="valid.acc.ave.pth", help="in --exp_dir (default: %(default)s)")
    parser.add_argument("--data_dir", required=True, help="data dir with wav.scp and text")
    parser.add_argument("--utt_id", default="", help="utterance to plot (default: the first with a transcript)")
    parser.add_argument("--out", required=True, help="PNG to write")
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    model, train_args = SpeechLLMTask.build_model_from_file(
        os.path.join(args.exp_dir, "config.yaml"), os.path.join(args.exp_dir, args.model_file), device="cpu"
    )
    if model.matching_loss is None:
        logger.info(f"{args.exp_dir} was trained without the matching loss: no attention map to plot")
        return
    restore_source_encoder(model).eval()  # reads audio even when trained on dumped encoder outputs
    utt_id, entry, transcript = first_utterance(args.data_dir, args.utt_id)
    speech = load_audio(utt_id, entry)
    weights, tokens = attention_map(model, speech, transcript_ids(train_args, transcript))
    frame_seconds = (len(speech) / SAMPLE_RATE) / weights.shape[1]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, weights.shape[1] / 12), max(3, len(tokens) / 3)))
    ax.imshow(weights, aspect="auto", origin="upper", cmap="viridis", interpolation="nearest",
              extent=(0, weights.shape[1] * frame_seconds, len(tokens) - 0.5, -0.5))
    ax.set_yticks(range(len(tokens)))
    ax.set_yticklabels(tokens, fontsize=7)
    ax.set_xlabel("time (s), adapter frames")
    ax.set_ylabel("transcript tokens (query)")
    ax.set_title(f"matching-loss cross-attention: {utt_id}", fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=100)
    np.save(os.path.splitext(args.out)[0] + ".npy", weights)
    # How diagonal the map is: correlation of each token's attention peak with its position.
    peaks = weights.argmax(axis=1)
    corr = float(np.corrcoef(np.arange(len(peaks)), peaks)[0, 1]) if len(peaks) > 2 and peaks.std() > 0 else 0.0
    logger.info(f"wrote {args.out} ({len(tokens)} tokens x {weights.shape[1]} frames); "
                f"peak-position/token-index correlation {corr:.2f}")


if __name__ == "__main__":
    run_main(main)
