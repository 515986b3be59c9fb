#!/usr/bin/env python3
"""Stage 11: decode audio with a trained SpeechLLM model and the constrained beam search.

    python -m espnet_speechllm.bin.speechllm_inference --config conf/decode.yaml \\
        --train_config exp/x/config.yaml --model_file exp/x/valid.acc.ave.pth \\
        --data_path_and_name_and_type dump/raw/test/wav.scp,speech,audio \\
        [--key_file keys.1.scp] --output_dir exp/x/decode/test/logdir/output.1 [--ngpu 1 --batch_size 8]

Decoding (Pham et al., arXiv 2406.17272, Sec. "Reducing insertion errors"): beam search with n-gram
non-repetition and a length penalty; the number of new tokens of an utterance is bounded by its duration
(``max_tokens_per_second * seconds + max_tokens_constant``, at most ``max_new_tokens``). ``--config`` holds the
``BeamSearchConfig`` options; an unknown key is an error that names it.

Writes ESPnet-style ``<output_dir>/<n>best_recog/{text,token,token_int,score}`` (``utt_id value`` per line;
an empty hypothesis is the utterance id alone). Logs the real-time factor (decoding time / audio time) at the
end. An utterance whose prefix does not fit the LLM's ``max_position_embeddings`` is an error naming it.
"""
import argparse
import contextlib
import logging
import os
import sys
import time
from typing import Dict, List, TextIO

import torch
from espnet2.utils.types import str2triple_str

from espnet_speechllm.data.audio import SAMPLE_RATE
from espnet_speechllm.decode.beam_search import BeamSearch, CTCInputs, Hypothesis
from espnet_speechllm.decode.config import BeamSearchConfig, load_decode_config
from espnet_speechllm.encoder.hf_speech_encoder import min_input_samples
from espnet_speechllm.encoder.precomputed import restore_source_encoder
from espnet_speechllm.tasks.speechllm import SpeechLLMTask
from espnet_speechllm.utils.cli import UserError, make_parser, setup_logging, str2bool

logger = logging.getLogger("speechllm_inference")

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class HypothesisWriter:
    """ESPnet-style output: ``<output_dir>/<n>best_recog/{text,token,token_int,score}``, one line per utterance."""

    FILES = ("text", "token", "token_int", "score")

    def __init__(self, output_dir: str, nbest: int, tokenizer):
        self.tokenizer = tokenizer
        self.handles: List[Dict[str, TextIO]] = []
        for n in range(1, nbest + 1):
            rank_dir = os.path.join(output_dir, f"{n}best_recog")
            os.makedirs(rank_dir, exist_ok=True)
            self.handles.append({name: open(os.path.join(rank_dir, name), "w", encoding="utf-8")
                                 for name in self.FILES})

    @staticmethod
    def _line(utt_id: str, value: str) -> str:
        return f"{utt_id} {value}\n" if value else f"{utt_id}\n"

    def write(self, utt_id: str, hyps: List[Hypothesis]) -> None:
        for files, hyp in zip(self.handles, hyps):
            ids = hyp.token_ids
            text = self.tokenizer.decode(ids, skip_special_tokens=True).strip() if ids else ""
            files["text"].write(self._line(utt_id, " ".join(text.split())))
            files["token"].write(self._line(utt_id, " ".join(self.tokenizer.convert_ids_to_tokens(ids))))
            files["token_int"].write(self._line(utt_id, " ".join(map(str, ids))))
            files["score"].write(self._line(utt_id, f"{hyp.score:.6f}"))

    def close(self) -> None:
        for files in self.handles:
            for handle in files.values():
                handle.close()


class SpeechLLMDecoder:
    """Audio batch -> n-best hypotheses: encoder + adapter + prompt prefix, then the beam search over the LLM.

    Args:
        model: a ``SpeechLLMModel`` (eval mode, on its device).
        config: decoding options (EOS/pad default to the LLM tokenizer's).
        dtype: dtype of the LLM weights and the prefix; encoder and adapter keep theirs (autocast on GPU).
    """

    def __init__(self, model, config: BeamSearchConfig, dtype: torch.dtype = torch.float32):
        self.model = model
        tokenizer = model.llm.tokenizer
        if config.eos_token_id is None:
            config.eos_token_id = model.llm.eos_token_id
        if config.pad_token_id is None:
            config.pad_token_id = tokenizer.pad_token_id
        self.config = config
        self.dtype = dtype
        model.llm.model.to(dtype)
        self.search = BeamSearch(model.llm.model, config)
        if config.ctc_weight > 0 and getattr(model, "adapter_ctc", None) is None:
            raise UserError(f"ctc_weight={config.ctc_weight} (joint CTC decoding) needs a model trained with "
                            "adapter_ctc_conf (the CTC of the adapter frames); set ctc_weight: 0 for this model")
        self.max_positions = model.llm.max_positions
        self.min_samples = min_input_samples(model.encoder)

    def budgets(self, utt_ids: List[str], seconds: List[float], prefix_lengths: List[int]) -> List[int]:
        """Per-utterance new-token bounds; an utterance whose prefix fills the LLM's positions is an error."""
        budgets = []
        for utt_id, sec, prefix_len in zip(utt_ids, seconds, prefix_lengths):
            budget = self.config.max_new_tokens_for_duration(sec)
            if self.max_positions is not None:
                if prefix_len >= self.max_positions:
                    raise UserError(
                        f"utterance {utt_id!r} ({sec:.2f} s) is too long for the LLM: its prompt + speech prefix "
                        f"has {prefix_len} positions, max_position_embeddings is {self.max_positions}. Remove or "
                        "split utterances this long (e.g. a lower maximum duration in the dump stage)."
                    )
                if prefix_len + budget > self.max_positions:
                    logger.warning(f"utterance {utt_id!r} ({sec:.2f} s): new tokens limited to "
                                   f"{self.max_positions - prefix_len} by max_position_embeddings")
                    budget = self.max_positions - prefix_len
            budgets.append(budget)
        return budgets

    @torch.inference_mode()
    def __call__(self, utt_ids: List[str], speech: torch.Tensor, speech_lengths: torch.Tensor):
        """speech (B, S) float waveforms at 16 kHz, speech_lengths (B,) -> per utterance its n-best."""
        for utt_id, n in zip(utt_ids, speech_lengths.tolist()):
            if n < self.min_samples:
                raise UserError(
                    f"utterance {utt_id!r} has {n} samples ({n / SAMPLE_RATE:.3f} s); the encoder needs at least "
                    f"{self.min_samples} (its receptive field). Drop it from the set (stage 6 drops test utterances "
                    "shorter than --min_test_wav_duration)."
                )
        device = next(self.model.parameters()).device
        speech, speech_lengths = speech.to(device), speech_lengths.to(device)
        autocast = (torch.autocast(device.type, dtype=self.dtype) if device.type == "cuda"
                    and self.dtype != torch.float32 else contextlib.nullcontext())
        with autocast:
            speech_emb, emb_lengths = self.model.encode_speech(speech, speech_lengths)  # (B, T', D)
        ctc = None
        if self.config.ctc_weight > 0:
            adapter_ctc = self.model.adapter_ctc
            log_probs = adapter_ctc.log_probs(speech_emb, self.model.llm.embedding_table())  # (B, T', V)
            ctc = CTCInputs(log_probs, emb_lengths, adapter_ctc.blank_id)
        inputs_embeds, mask = self.model.build_prefix(speech_emb, emb_lengths)  # (B, P, D), (B, P)
        seconds = (speech_lengths.float() / SAMPLE_RATE).tolist()
        budgets = self.budgets(utt_ids, seconds, mask.sum(dim=1).tolist())
        return self.search(inputs_embeds.to(self.dtype), mask, torch.tensor(budgets, device=device), ctc)


def get_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument("--config", default=None, help="decoding options YAML (beam_size, no_repeat_ngram_size, "
                        "length_penalty, max_new_tokens, max_tokens_per_second, ...)")
    parser.add_argument("--train_config", required=True, help="the experiment's config.yaml")
    parser.add_argument("--model_file", required=True, help="model weights, e.g. exp/x/valid.acc.ave.pth")
    parser.add_argument("--data_path_and_name_and_type", type=str2triple_str, action="append", required=True,
                        help="e.g. dump/raw/test/wav.scp,speech,audio")
    parser.add_argument("--key_file", default=None, help="decode only these utterances (first column)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU, 1: one GPU (split jobs for more)")
    parser.add_argument("--batch_size", type=int, default=1, help="utterances decoded together")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES), help="LLM weights and decoding")
    parser.add_argument("--nbest", type=int, default=None, help="hypotheses written per utterance (overrides "
                        "the config's nbest; at most beam_size)")
    parser.add_argument("--num_workers", type=int, default=1, help="data loader workers")
    parser.add_argument("--num_threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default, one per core; give cores / jobs when several "
                        "decoding jobs share a machine)")
    parser.add_argument("--allow_base_weight_mismatch", type=str2bool, default=False,
                        help="load a model trained on other base weights than its model dirs hold now (warned)")
    parser.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    logger.info("%s %s", os.path.basename(sys.executable), " ".join(sys.argv if argv is None else argv))
    config = load_decode_config(args.config, args.nbest)
    if args.ngpu > 1:
        raise UserError(f"--ngpu {args.ngpu}: a decoding job uses at most one GPU; run more jobs (--nj)")
    device = "cuda" if args.ngpu > 0 else "cpu"
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    dtype = DTYPES[args.dtype]

    # Weights are read with torch.load(weights_only=True) (SpeechLLMTask.build_model_from_file).
    model, train_args = SpeechLLMTask.build_model_from_file(args.train_config, args.model_file, device,
                                                            args.allow_base_weight_mismatch)
    restore_source_encoder(model)  # a model trained on dumped encoder outputs decodes audio with its encoder
    model.eval()
    decoder = SpeechLLMDecoder(model, config, dtype)
    logger.info("decoding options: %s", config.to_dict())
    loader = SpeechLLMTask.build_streaming_iterator(
        args.data_path_and_name_and_type,
        preprocess_fn=SpeechLLMTask.build_preprocess_fn(train_args, train=False),
        collate_fn=SpeechLLMTask.build_collate_fn(train_args, train=False),
        key_file=args.key_file,
        batch_size=args.batch_size,
        dtype="float32",  # waveforms; the LLM dtype is --dtype
        num_workers=args.num_workers,
        ngpu=args.ngpu,
        inference=True,
    )

    writer = HypothesisWriter(args.output_dir, config.nbest, model.llm.tokenizer)
    num_utts, audio_seconds, decode_seconds, empty = 0, 0.0, 0.0, 0
    try:
        for utt_ids, batch in loader:
            start = time.perf_counter()
            hyps = decoder(utt_ids, batch["speech"], batch["speech_lengths"])
            if device == "cuda":
                torch.cuda.synchronize()
            decode_seconds += time.perf_counter() - start
            audio_seconds += float(batch["speech_lengths"].sum()) / SAMPLE_RATE
            for utt_id, utt_hyps in zip(utt_ids, hyps):
                writer.write(utt_id, utt_hyps)
                empty += not utt_hyps[0].token_ids
            num_utts += len(utt_ids)
            logger.debug("%d utterances decoded", num_utts)
    finally:
        writer.close()
    if num_utts == 0:
        raise UserError(f"no utterance to decode in {args.data_path_and_name_and_type} (key file {args.key_file})")
    logger.info(f"decoded {num_utts} utterances ({empty} empty hypotheses) into {args.output_dir}")
    logger.info(f"RTF {decode_seconds / audio_seconds:.4f}: decoding {decode_seconds:.2f} s for "
                f"{audio_seconds:.2f} s of audio ({num_utts / decode_seconds:.2f} utterances/s, {device}, "
                f"{args.dtype}, batch {args.batch_size}, beam {config.beam_size})")


if __name__ == "__main__":
    main()
