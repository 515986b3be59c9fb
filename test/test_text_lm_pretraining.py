"""LLM text pretraining: the stretched-copy sample layout, and that copy samples teach in-context copying."""
import random

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from espnet_speechllm.llm.prompt import DEFAULT_TEMPLATE, PromptTemplate
from espnet_speechllm.pretrain.text_lm import PretrainSampler, copy_accuracy, pretrain_causal_lm


@pytest.fixture(scope="module")
def tokenizer(tiny_models):
    return AutoTokenizer.from_pretrained(f"{tiny_models}/llm")


SENTENCES = ["THE CAT SAT ON THE MAT", "A DOG RAN HOME", "SEVEN BIRDS SANG IN THE PARK", "MY FRIEND READ A BOOK"]


def test_copy_sample_layout(tokenizer):
    sampler = PretrainSampler(tokenizer, SENTENCES, random.Random(0), copy_fraction=1.0, copy_template=DEFAULT_TEMPLATE)
    prompt = PromptTemplate(DEFAULT_TEMPLATE, tokenizer)
    for ids in sampler.encoded:
        seq, start = sampler.copy_sample(ids)
        assert seq[: len(prompt.before_ids)] == prompt.before_ids and seq[0] == tokenizer.bos_token_id
        assert seq[start:] == ids + [tokenizer.eos_token_id]
        assert seq[start - len(prompt.after_ids) : start] == prompt.after_ids
        stretched = seq[len(prompt.before_ids) : start - len(prompt.after_ids)]
        # Each token of the sentence, in order, repeated 1..6 times.
        runs, i = [], 0
        for token in ids:
            n = 0
            while i < len(stretched) and stretched[i] == token and n < 6:
                i, n = i + 1, n + 1
            runs.append(n)
        assert i == len(stretched) and all(1 <= n <= 6 for n in runs), runs


def test_plain_samples_and_bad_fraction(tokenizer):
    sampler = PretrainSampler(tokenizer, SENTENCES, random.Random(0), copy_fraction=0.0)
    seq = sampler.sample()
    assert seq[0] == tokenizer.bos_token_id and seq[-1] == tokenizer.eos_token_id and seq[1:-1] in sampler.encoded
    with pytest.raises(ValueError, match="copy_fraction"):
        PretrainSampler(tokenizer, SENTENCES, random.Random(0), copy_fraction=1.5, copy_template=DEFAULT_TEMPLATE)
    with pytest.raises(ValueError, match="template"):
        PretrainSampler(tokenizer, SENTENCES, random.Random(0), copy_fraction=0.5)


def test_copy_pretraining_teaches_copying(tokenizer):
    # Random 2-word sentences over a 40-word vocabulary: the answer can only come from the context.
    rng = random.Random(1)
    words = "RED BLUE GREEN CAT DOG BIRD HOME PARK BOOK TREE ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN".split()
    sentences = [" ".join(rng.choice(words) for _ in range(3)) for _ in range(400)]
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    probe = PretrainSampler(tokenizer, sentences, random.Random(2), 1.0, DEFAULT_TEMPLATE)
    before = copy_accuracy(model, probe, num_samples=40)
    pretrain_causal_lm(model, tokenizer, sentences, steps=150, batch_size=16, lr=3e-3, copy_fraction=1.0,
                       copy_template=DEFAULT_TEMPLATE)
    after = copy_accuracy(model, probe, num_samples=40)
    assert after > before + 0.3, (before, after)
