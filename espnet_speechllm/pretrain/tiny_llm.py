"""The tiny Llama-architecture LLM of the tiny foundation models (pretrain/tiny_models.py): built on the tokenizer
already in its dir and, with ``pretrain.llm_steps`` > 0, pretrained on a text pool (pretrain/text_lm.py: plain
text and stretched copies; phase 2 in the layout of an adapter's outputs), then saved with ``save_pretrained``."""
import logging
import random

from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from espnet_speechllm.pretrain.build_info import write_pretrain_report
from espnet_speechllm.pretrain.text_lm import PretrainSampler, copy_accuracy, perplexity, pretrain_causal_lm

logger = logging.getLogger(__name__)


def read_sentences(path: str):
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def build_tiny_llm(config: dict, text: str, out_dir: str) -> dict:
    """Pretrains the LLM of ``out_dir`` (its tokenizer is already there) and saves it; returns its report."""
    tokenizer = AutoTokenizer.from_pretrained(out_dir)  # the same call the training code makes
    llm_config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id, **config["llm"])
    model = LlamaForCausalLM(llm_config)
    pre = config["pretrain"]
    report = {}
    if pre["llm_steps"] > 0:
        sentences = read_sentences(text)
        n_held = min(pre["llm_heldout_sentences"], len(sentences) // 10)
        held, train = sentences[:n_held], sentences[n_held:]
        rng = random.Random(config["seed"])
        layout = dict(max_repeat=pre["llm_max_repeat"], random_words=tuple(pre["llm_random_words"]))
        sampler = PretrainSampler(tokenizer, train, rng, pre["llm_mix"], pre["llm_copy_template"], **layout)

        def copy_probe(seed_offset: int, train_sampler: PretrainSampler, **kwargs) -> PretrainSampler:
            """Copies of held-out sentences, and of random strings over the training vocabulary."""
            probe_ = PretrainSampler(tokenizer, held or train, random.Random(config["seed"] + seed_offset),
                                     {"copy": 1.0}, pre["llm_copy_template"], **kwargs)
            probe_.word_ids = train_sampler.word_ids
            return probe_

        probe = copy_probe(1, sampler, **layout)
        history, robust_probes = [], []

        def evaluate(m, step):
            history.append({"step": step, "copy_grammar": copy_accuracy(m, probe, 100),
                            "copy_random": copy_accuracy(m, probe, 100, random_strings=True)})
            if robust_probes:  # phase 2: also the adapter layout (fillers, noise level 1)
                history[-1]["copy_fillers_noise1"] = copy_accuracy(m, robust_probes[0], 100, prefix_noise=1.0)
            logger.info(f"LLM pretraining step {step}: copy accuracy " + ", ".join(
                f"{k} {v:.4f}" for k, v in history[-1].items() if k != "step"))

        report["final_loss"] = pretrain_causal_lm(model, sampler, pre["llm_steps"], pre["llm_batch_size"],
                                                  pre["llm_lr"], pre["llm_curriculum_steps"], pre["eval_every"],
                                                  evaluate)
        if pre["llm_robust_steps"] > 0:
            robust = dict(max_repeat=pre["llm_robust_max_repeat"], random_words=tuple(pre["llm_random_words"]),
                          max_blank=pre["llm_robust_max_blank"])
            sampler = PretrainSampler(tokenizer, train, rng, pre["llm_mix"], pre["llm_copy_template"], **robust,
                                      clean_share=pre["llm_robust_clean_share"], clean_max_repeat=pre["llm_max_repeat"])
            robust_probe = copy_probe(2, sampler, **robust)
            robust_probes.append(robust_probe)
            report["final_loss"] = pretrain_causal_lm(model, sampler, pre["llm_robust_steps"], pre["llm_batch_size"],
                                                      pre["llm_robust_lr"], 0, pre["eval_every"], evaluate,
                                                      prefix_noise=pre["llm_robust_prefix_noise"], seed=config["seed"])
            # Level 1: prefix embeddings at cosine ~0.7 to the tokens', with fillers between the tokens.
            report["copy_token_accuracy_fillers_noise1_heldout_sentences"] = copy_accuracy(
                model, robust_probe, 500, prefix_noise=1.0)
        report["heldout_sentences"] = n_held
        report["copy_token_accuracy_heldout_sentences"] = copy_accuracy(model, probe, 500)
        report["copy_token_accuracy_random_strings"] = copy_accuracy(model, probe, 500, random_strings=True)
        if n_held:
            report["heldout_perplexity"] = perplexity(model, tokenizer, held)
        report["history"] = history
        logger.info("LLM pretraining: stretched-copy token accuracy %.4f (held-out sentences), %.4f (random word "
                    "strings); held-out perplexity %s", report["copy_token_accuracy_heldout_sentences"],
                    report["copy_token_accuracy_random_strings"], f"{report.get('heldout_perplexity', 0):.2f}")
    model.save_pretrained(out_dir)
    write_pretrain_report(out_dir, report)
    return report
