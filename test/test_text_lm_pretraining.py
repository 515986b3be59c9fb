"""LLM text pretraining: the stretched-copy sample layout, and that copy samples teach in-context copying."""
import random

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from espnet_speechllm.llm.prompt import DEFAULT_TEMPLATE, PromptTemplate
from espnet_speechllm.pretrain.text_lm import (
    PretrainSampler,
    copy_accuracy,
    noisy_prefix_embeddings,
    pretrain_causal_lm,
)


@pytest.fixture(scope="module")
def tokenizer(tiny_models):
    return AutoTokenizer.from_pretrained(f"{tiny_models}/llm")


SENTENCES = ["THE CAT SAT ON THE MAT", "A DOG RAN HOME", "SEVEN BIRDS SANG IN THE PARK", "MY FRIEND READ A BOOK"]


def test_copy_sample_layout(tokenizer):
    sampler = PretrainSampler(tokenizer, SENTENCES, random.Random(0), {"copy": 1.0}, DEFAULT_TEMPLATE)
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


def test_copy_sample_with_fillers(tokenizer):
    """max_blank: 0..max_blank filler tokens before each copied token's run, fillers never in the answer."""
    sampler = PretrainSampler(tokenizer, SENTENCES, random.Random(0), {"copy": 1.0}, DEFAULT_TEMPLATE,
                              max_repeat=2, max_blank=3)
    prompt = PromptTemplate(DEFAULT_TEMPLATE, tokenizer)
    filler = tokenizer.unk_token_id
    seen_fillers = 0
    for _ in range(20):
        ids = sampler.encoded[0]
        seq, start = sampler.copy_sample(ids)
        assert seq[start:] == ids + [tokenizer.eos_token_id]
        stretched = seq[len(prompt.before_ids) : start - len(prompt.after_ids)]
        i = 0
        for token in ids:
            blanks = 0
            while stretched[i] == filler:
                i, blanks = i + 1, blanks + 1
            n = 0
            while i < len(stretched) and stretched[i] == token and n < 2:
                i, n = i + 1, n + 1
            assert blanks <= 3 and 1 <= n <= 2
            seen_fillers += blanks
        assert i == len(stretched)
    assert seen_fillers > 0
    with pytest.raises(ValueError, match="filler"):
        PretrainSampler(_NoUnk(tokenizer), SENTENCES, random.Random(0), {"copy": 1.0}, DEFAULT_TEMPLATE, max_blank=1)


class _NoUnk:
    """A tokenizer without an unk token."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self.unk_token_id = None

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

    def __call__(self, *args, **kwargs):
        return self._tokenizer(*args, **kwargs)


def test_clean_share_mixes_in_phase_one_layout_without_noise(tokenizer):
    """clean_share: that share of copies has no fillers and an empty noise span; the others keep fillers and a
    span over their stretched prefix."""
    sampler = PretrainSampler(tokenizer, SENTENCES, random.Random(0), {"copy": 1.0}, DEFAULT_TEMPLATE,
                              max_repeat=2, max_blank=3, clean_share=0.5, clean_max_repeat=4)
    filler = tokenizer.unk_token_id
    clean = 0
    for _ in range(200):
        seq, (lo, hi) = sampler.draw()
        if lo == hi:
            clean += 1
            assert filler not in seq
        else:
            assert hi > lo
    assert 70 < clean < 130, clean
    with pytest.raises(ValueError, match="clean_share"):
        PretrainSampler(tokenizer, SENTENCES, random.Random(0), {"copy": 1.0}, DEFAULT_TEMPLATE, clean_share=1.5)


def test_plain_samples_and_bad_mix(tokenizer):
    sampler = PretrainSampler(tokenizer, SENTENCES, random.Random(0), {"plain": 1.0})
    seq = sampler.sample()
    assert seq[0] == tokenizer.bos_token_id and seq[-1] == tokenizer.eos_token_id and seq[1:-1] in sampler.encoded
    with pytest.raises(ValueError, match="sum to 1"):
        PretrainSampler(tokenizer, SENTENCES, random.Random(0), {"plain": 0.5, "copy": 1.0}, DEFAULT_TEMPLATE)
    with pytest.raises(ValueError, match="unknown sample kind"):
        PretrainSampler(tokenizer, SENTENCES, random.Random(0), {"copies": 1.0}, DEFAULT_TEMPLATE)
    with pytest.raises(ValueError, match="template"):
        PretrainSampler(tokenizer, SENTENCES, random.Random(0), {"plain": 0.5, "random_copy": 0.5})


def test_random_strings_use_the_pool_vocabulary_and_the_curriculum(tokenizer):
    sampler = PretrainSampler(tokenizer, SENTENCES, random.Random(0), {"random_copy": 1.0}, DEFAULT_TEMPLATE,
                              random_words=(2, 8))
    words = {w for s in SENTENCES for w in s.split()}
    sampler.set_max_words(3)
    for _ in range(20):
        text = tokenizer.decode(sampler.random_string())
        assert 2 <= len(text.split()) <= 3 and set(text.split()) <= words, text
    sampler.set_max_words(100)  # clipped to the configured maximum
    assert max(len(tokenizer.decode(sampler.random_string()).split()) for _ in range(50)) == 8


@pytest.mark.parametrize("prefix_noise", [0.0, 0.5])
def test_copy_pretraining_teaches_copying(tokenizer, prefix_noise):
    """Copy samples teach copying; also with noisy prefix embeddings (the clean probe still copies)."""
    # Random 2-word sentences over a 40-word vocabulary: the answer can only come from the context.
    rng = random.Random(1)
    words = "RED BLUE GREEN CAT DOG BIRD HOME PARK BOOK TREE ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN".split()
    sentences = [" ".join(rng.choice(words) for _ in range(3)) for _ in range(400)]
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    probe = PretrainSampler(tokenizer, sentences, random.Random(2), {"copy": 1.0}, DEFAULT_TEMPLATE)
    before = copy_accuracy(model, probe, num_samples=40)
    sampler = PretrainSampler(tokenizer, sentences, random.Random(0), {"copy": 1.0}, DEFAULT_TEMPLATE)
    pretrain_causal_lm(model, sampler, steps=150, batch_size=16, lr=3e-3, prefix_noise=prefix_noise)
    after = copy_accuracy(model, probe, num_samples=40)
    assert after > before + 0.3, (before, after)


def test_noisy_prefix_embeddings_touch_only_the_span():
    embeds = torch.randn(3, 10, 16)
    spans = [(2, 5), (0, 0), (4, 10)]
    out = noisy_prefix_embeddings(embeds, spans, torch.ones(3), torch.Generator().manual_seed(0))
    changed = (out != embeds).any(-1)  # (B, L)
    for i, (lo, hi) in enumerate(spans):
        expected = torch.zeros(10, dtype=torch.bool)
        expected[lo:hi] = True
        assert torch.equal(changed[i], expected), (i, changed[i])
    # Level 1 is about cosine 0.7 to the clean embeddings, level 0 leaves the row as it is.
    clean = torch.randn(2, 8, 128)
    out = noisy_prefix_embeddings(clean, [(0, 8)] * 2, torch.tensor([1.0, 0.0]), torch.Generator().manual_seed(1))
    cos = torch.nn.functional.cosine_similarity(out, clean, dim=-1)
    assert 0.6 < float(cos[0].mean()) < 0.8 and torch.equal(out[1], clean[1])

