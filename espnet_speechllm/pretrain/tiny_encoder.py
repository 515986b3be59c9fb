"""The tiny HuBERT-architecture speech encoder of the tiny foundation models (pretrain/tiny_models.py): pretrained
with CTC (pretrain/ctc_encoder.py) on the LLM's tokens or on characters, then saved as a bare encoder, the layout
of facebook/hubert-large-ll60k, with its CTC vocabulary."""
import json
import logging
import os

from transformers import AutoTokenizer, HubertConfig, HubertForCTC

from espnet_speechllm.pretrain.build_info import write_pretrain_report
from espnet_speechllm.pretrain.ctc_encoder import CharUnits, TokenUnits, greedy_ctc_cer, load_ctc_data, pretrain_ctc

logger = logging.getLogger(__name__)


def build_tiny_encoder(config: dict, pretrain_data: str, out_dir: str, tokenizer_dir: str) -> dict:
    """Pretrains a HuBERT-architecture encoder with CTC and saves the bare encoder; returns its report.

    Phase 1: ``encoder_steps`` on ``encoder_units``. Phase 2 (``encoder_token_steps`` > 0): a new CTC head on
    the LLM's tokens, on top of the phase-1 encoder, with the waveform CNN frozen: characters are learnt fast
    from scratch, and the tokens on top of them make the last layer separate the units the LLM reads.
    """
    pre = config["pretrain"]
    audio, texts = [], []
    if pretrain_data and pre["encoder_steps"] + pre["encoder_token_steps"] > 0:
        audio, texts = load_ctc_data(pretrain_data)
        audio, texts = audio[: pre["encoder_max_utts"]], texts[: pre["encoder_max_utts"]]
    token_units = TokenUnits(AutoTokenizer.from_pretrained(tokenizer_dir))
    units = token_units if pre["encoder_units"] == "llm_tokens" else CharUnits(texts)
    n_held = min(pre["encoder_heldout_utts"], len(texts) // 10)
    held_audio, held_texts = audio[:n_held], texts[:n_held]
    train = dict(audio=audio[n_held:], texts=texts[n_held:], batch_size=pre["encoder_batch_size"], lr=pre["encoder_lr"],
                 seed=config["seed"], speeds=pre["encoder_speeds"], noise_prob=pre["encoder_noise_prob"])
    report = {"units": pre["encoder_units"], "heldout_utts": n_held, "history": []}

    def ctc_model_for(units_, hubert=None):
        model = HubertForCTC(HubertConfig(vocab_size=len(units_), pad_token_id=0, bos_token_id=None, eos_token_id=None,
                                          ctc_loss_reduction="mean", **config["encoder"]))
        if hubert is not None:
            model.hubert.load_state_dict(hubert.state_dict())
        return model

    def run_phase(model, units_, steps, freeze_conv_after, name):
        def evaluate(m, step):
            cer = greedy_ctc_cer(m, held_audio, held_texts, units_)
            report["history"].append({"phase": name, "step": step, "heldout_greedy_ctc_cer": cer})
            logger.info(f"encoder pretraining ({name}) step {step}: greedy CTC CER {100 * cer:.2f}%")

        pretrain_ctc(model, train["audio"], train["texts"], units_, steps, train["batch_size"], train["lr"],
                     seed=train["seed"], speeds=train["speeds"], noise_prob=train["noise_prob"],
                     freeze_conv_after=freeze_conv_after, eval_every=pre["eval_every"] if n_held else 0,
                     evaluate=evaluate)
        if n_held:
            report[f"heldout_greedy_ctc_cer_{name}"] = greedy_ctc_cer(model, held_audio, held_texts, units_)
            logger.info(f"encoder pretraining ({name}): greedy CTC CER on {n_held} held-out utterances = "
                        f"{100 * report[f'heldout_greedy_ctc_cer_{name}']:.2f}%")

    ctc_model = ctc_model_for(units)
    if texts and pre["encoder_steps"] > 0:
        run_phase(ctc_model, units, pre["encoder_steps"], pre["encoder_freeze_conv_after"], pre["encoder_units"])
    if texts and pre["encoder_token_steps"] > 0:
        ctc_model = ctc_model_for(token_units, ctc_model.hubert)
        units = token_units
        report["units"] = "llm_tokens"
        run_phase(ctc_model, units, pre["encoder_token_steps"], 0.0, "llm_tokens")
    if n_held:
        report["heldout_greedy_ctc_cer"] = report[f"heldout_greedy_ctc_cer_{report['units']}"]
    # Save the bare encoder (HubertModel), the layout of facebook/hubert-large-ll60k.
    ctc_model.hubert.save_pretrained(out_dir)
    with open(os.path.join(out_dir, "ctc_vocab.json"), "w") as f:
        json.dump(units.vocab, f)
    write_pretrain_report(out_dir, report)
    return report
