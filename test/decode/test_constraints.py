"""The search constraints: the loop rule against its definition, one ban logic for the search and the reachability
check, and the beam search with the loop rule equal to HF ``generate`` running the same rule as a logits processor."""
import pytest
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from espnet_speechllm.decode.config import BeamSearchConfig
from espnet_speechllm.decode.constraints import Ban, SearchConstraints
from espnet_speechllm.decode.ngram import no_loop_ngram_mask, no_repeat_ngram_mask, repeats_ngram

from .test_beam_search import EOS, assert_same, decode, hf_generate, hf_kwargs, prefix_batch, tiny_llama

VOCAB = 7


def random_histories(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    for length in (0, 1, 2, 3, 5, 8, 17, 30):
        yield torch.randint(0, 4, (8, length), generator=gen)  # 4 symbols: many repeats and loops


def ends_in_loop(seq: list[int], n: int) -> bool:
    """The definition: the last n + p tokens have period p for some p in 1..n."""
    return any(len(seq) >= n + p and all(seq[-j] == seq[-j - p] for j in range(1, n + 1)) for p in range(1, n + 1))


def repeats_anywhere(seq: list[int], n: int) -> bool:
    grams = [tuple(seq[i: i + n]) for i in range(len(seq) - n + 1)]
    return len(seq) >= n and grams[-1] in grams[:-1]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_loop_mask_is_the_definition(n):
    for history in random_histories(n):
        mask = no_loop_ngram_mask(history, n, VOCAB)
        for row, seq in enumerate(history.tolist()):
            expected = [ends_in_loop(seq + [x], n) for x in range(VOCAB)]
            got = mask[row].tolist() if mask is not None else [False] * VOCAB
            assert got == expected, (seq, n)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_anywhere_mask_is_the_definition(n):
    for history in random_histories(10 + n):
        mask = no_repeat_ngram_mask(history, n, VOCAB)
        for row, seq in enumerate(history.tolist()):
            expected = [repeats_anywhere(seq + [x], n) for x in range(VOCAB)]
            assert (mask[row].tolist() if mask is not None else [False] * VOCAB) == expected


@pytest.mark.parametrize("loop", [False, True])
@pytest.mark.parametrize("n", [0, 1, 2, 4])
def test_repeats_ngram_equals_the_mask(n, loop):
    """The reachability check asks per token what the search masks over the vocabulary."""
    mask_fn = no_loop_ngram_mask if loop else no_repeat_ngram_mask
    for history in random_histories(20 + n):
        for token in range(VOCAB):
            next_tokens = torch.full((history.shape[0],), token)
            mask = mask_fn(history, n, VOCAB)
            expected = mask[:, token] if mask is not None else torch.zeros(history.shape[0], dtype=torch.bool)
            assert torch.equal(repeats_ngram(history, next_tokens, n, loop=loop), expected)


def test_first_bans_walks_the_search_masks():
    """first_bans (batched over sequences of different lengths) == stepping the search's mask token by token."""
    rules = SearchConstraints([EOS], min_new_tokens=2, no_repeat_ngram_size=4, no_loop_ngram_size=2)
    gen = torch.Generator().manual_seed(3)
    seqs = [torch.randint(3, 7, (length,), generator=gen).tolist() + [EOS] for length in (0, 1, 3, 6, 9, 15, 25, 40)]
    seqs.append([3, 4, 5, 6, EOS])  # no repeat at all
    for seq, ban in zip(seqs, rules.first_bans(seqs)):
        expected = None
        for t in range(len(seq)):
            mask = rules.mask(torch.tensor([seq[:t]], dtype=torch.long), VOCAB)
            if mask is not None and mask[0, seq[t]]:
                expected = t
                break
        assert (ban.position if ban else None) == expected, seq
    bans = rules.first_bans([[EOS], [3, 3, 3, EOS], [3, 4, 5, 6, 3, 4, 5, 6, EOS]])
    assert bans[0] == Ban(0, "min_new_tokens=2")
    assert bans[1] == Ban(2, "no_loop_ngram_size=2", (3, 3))  # "3 3 3": 2 + 1 tokens of period 1
    assert bans[2] == Ban(7, "no_repeat_ngram_size=4", (3, 4, 5, 6))  # period 4 > 2: only the anywhere rule


class LoopProcessor(LogitsProcessor):
    """The loop rule in HF's processor API (generate passes the generated ids: the prefix is embeddings)."""

    def __init__(self, n: int):
        self.n = n

    def __call__(self, input_ids, scores):
        mask = no_loop_ngram_mask(input_ids, self.n, scores.shape[-1])
        return scores if mask is None else scores.masked_fill(mask, float("-inf"))


@pytest.fixture(scope="module")
def loopy_model():
    return tiny_llama(seed=2)


@pytest.mark.parametrize("setting", [dict(beam_size=1), dict(beam_size=4, nbest=2),
                                     dict(beam_size=3, no_repeat_ngram_size=4)])
def test_loop_rule_in_the_search_equals_generate(loopy_model, setting):
    batch = prefix_batch()
    conf = dict(setting, max_new_tokens=24)
    free = decode(loopy_model, *batch, **conf)
    assert any(ends_in_loop(h.token_ids[:t], 2) for hyps in free for h in hyps for t in range(len(h.token_ids) + 1))
    ours = decode(loopy_model, *batch, no_loop_ngram_size=2, **conf)
    for hyps in ours:
        for h in hyps:
            assert not any(ends_in_loop(h.token_ids[:t], 2) for t in range(len(h.token_ids) + 1))
    ref = hf_generate(loopy_model, *batch, logits_processor=LogitsProcessorList([LoopProcessor(2)]), **hf_kwargs(conf))
    assert_same(ours, ref)
    # what the search outputs, the reachability check calls reachable
    rules = SearchConstraints([EOS], no_repeat_ngram_size=setting.get("no_repeat_ngram_size", 0), no_loop_ngram_size=2)
    assert rules.first_bans([h.token_ids + [EOS] for hyps in ours for h in hyps]) == [None] * sum(map(len, ours))


def test_bad_option_names_the_value():
    with pytest.raises(ValueError, match="no_loop_ngram_size must be an int >= 0.*-1"):
        BeamSearchConfig(no_loop_ngram_size=-1)
    assert BeamSearchConfig.from_dict({"no_loop_ngram_size": 6}).no_loop_ngram_size == 6


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_loop_rule_on_gpu_equals_generate():
    model = tiny_llama(seed=2).cuda()
    embeds, mask = (x.cuda() for x in prefix_batch())
    conf = dict(beam_size=4, nbest=2, max_new_tokens=24, no_repeat_ngram_size=4)
    ours = decode(model, embeds, mask, no_loop_ngram_size=2, **conf)
    ref = hf_generate(model, embeds, mask, logits_processor=LogitsProcessorList([LoopProcessor(2)]), **hf_kwargs(conf))
    assert_same(ours, ref)
    rules = SearchConstraints([EOS], no_repeat_ngram_size=4, no_loop_ngram_size=2)
    seqs = [h.token_ids + [EOS] for hyps in ours for h in hyps]
    assert rules.first_bans(seqs) == [None] * len(seqs)  # what the search output, the check calls reachable
