"""The constrained beam search equals HF ``generate`` (tokens and scores) on a tiny random Llama.

The model is made non-degenerate: a sharpened lm_head gives peaked distributions, a boosted EOS row makes
hypotheses end at varying steps (some empty, some at the token budget), and prefixes have different lengths.
"""
import warnings

import pytest
import torch

from espnet_speechllm.decode.beam_search import BeamSearch, Hypothesis, left_padded_positions
from espnet_speechllm.decode.config import BeamSearchConfig
from espnet_speechllm.decode.ngram import no_repeat_ngram_mask

EOS, PAD = 2, 0
PREFIX_LENGTHS = [5, 9, 12, 7, 3, 12]
KV_MODES = [pytest.param(True, id="shared_prefix_kv"), pytest.param(False, id="per_beam_kv")]


def tiny_llama(seed: int = 0, eos_scale: float = 1.5, vocab_size: int = 64, hidden_size: int = 32):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, bos_token_id=1,
        eos_token_id=EOS, pad_token_id=PAD,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)
        model.lm_head.weight[EOS].mul_(eos_scale)
    return model


def prefix_batch(seed: int = 10, lengths=PREFIX_LENGTHS, hidden_size: int = 32):
    """Left-padded random prefix embeddings (B, T, D) and mask (B, T)."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    max_len = int(lengths.max())
    embeds = torch.randn(len(lengths), max_len, hidden_size, generator=gen)  # (B, T, D)
    mask = (torch.arange(max_len)[None, :] >= (max_len - lengths)[:, None]).long()  # (B, T)
    return embeds * mask[..., None], mask


def hf_generate(model, embeds, mask, num_beams=1, num_return_sequences=1, eos_token_id=EOS, **kwargs):
    """HF generate -> per utterance a list of (token ids without EOS, score) like ours."""
    eos = [eos_token_id] if isinstance(eos_token_id, int) else eos_token_id
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        out = model.generate(
            inputs_embeds=embeds, attention_mask=mask, num_beams=num_beams, do_sample=False,
            num_return_sequences=num_return_sequences, eos_token_id=eos_token_id, pad_token_id=PAD, output_scores=True,
            output_logits=num_beams == 1, return_dict_in_generate=True, **kwargs,
        )
    results = []
    for i, seq in enumerate(out.sequences.tolist()):
        ended = [j for j, token in enumerate(seq) if token in eos]
        ids = seq[: ended[0]] if ended else seq
        if num_beams > 1:
            score = float(out.sequences_scores[i])
        else:  # greedy: sum of the chosen tokens' log-probs / length ** length_penalty
            length = len(ids) + bool(ended)
            score = sum(float(torch.log_softmax(out.logits[j][i].float(), -1)[seq[j]]) for j in range(length))
            score /= length ** kwargs.get("length_penalty", 1.0)
        results.append((ids, score))
    return [results[i: i + num_return_sequences] for i in range(0, len(results), num_return_sequences)]


def decode(model, embeds, mask, max_new_tokens=None, **conf):
    conf.setdefault("eos_token_id", EOS)
    return BeamSearch(model, BeamSearchConfig(**conf))(embeds, mask, max_new_tokens)


def assert_same(ours: list[list[Hypothesis]], ref: list[list[tuple]]):
    assert [[h.token_ids for h in hyps] for hyps in ours] == [[ids for ids, _ in hyps] for hyps in ref]
    torch.testing.assert_close(torch.tensor([[h.score for h in hyps] for hyps in ours]),
                               torch.tensor([[s for _, s in hyps] for hyps in ref]), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def model():
    return tiny_llama()


@pytest.fixture(scope="module")
def batch():
    return prefix_batch()


SETTINGS = {
    "greedy": dict(beam_size=1),
    "beam4": dict(beam_size=4),
    "beam4_nbest4": dict(beam_size=4, nbest=4),
    "beam4_ngram2": dict(beam_size=4, no_repeat_ngram_size=2),
    "beam3_lp-1": dict(beam_size=3, length_penalty=-1.0),
    "beam4_lp2_never": dict(beam_size=4, length_penalty=2.0, early_stopping="never"),
    "beam4_early_min3": dict(beam_size=4, early_stopping=True, min_new_tokens=3),
    "beam2_two_eos": dict(beam_size=2, eos_token_id=[EOS, 5], no_repeat_ngram_size=3),
    "greedy_ngram3_lp0.5": dict(beam_size=1, no_repeat_ngram_size=3, length_penalty=0.5),
}


def hf_kwargs(conf: dict) -> dict:
    kwargs = {k: v for k, v in conf.items() if k not in ("beam_size", "nbest")}
    return dict(kwargs, num_beams=conf["beam_size"], num_return_sequences=conf.get("nbest", 1))


@pytest.mark.parametrize("shared_prefix_kv", KV_MODES)
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_equals_hf_generate(model, batch, setting, shared_prefix_kv):
    """(a) hypotheses and scores == generate, for a batch of different prefix lengths."""
    conf = dict(SETTINGS[setting], max_new_tokens=20)
    ours = decode(model, *batch, shared_prefix_kv=shared_prefix_kv, **conf)
    assert_same(ours, hf_generate(model, *batch, **hf_kwargs(conf)))


def test_the_parity_case_is_not_degenerate(model, batch):
    """Hypotheses end at varying steps: empty ones, early EOS and the token budget."""
    lengths = [len(hyps[0].token_ids) for hyps in decode(model, *batch, beam_size=4, max_new_tokens=20)]
    assert 0 in lengths and 20 in lengths and len(set(lengths)) >= 4, lengths


@pytest.mark.parametrize("shared_prefix_kv", KV_MODES)
@pytest.mark.parametrize("beam_size", [1, 4])
def test_padding_does_not_change_a_hypothesis(model, batch, beam_size, shared_prefix_kv):
    """(b) each utterance decoded alone (no padding) == the same utterance in the padded batch."""
    embeds, mask = batch
    conf = dict(beam_size=beam_size, nbest=beam_size, no_repeat_ngram_size=3, max_new_tokens=20,
                shared_prefix_kv=shared_prefix_kv)
    in_batch = decode(model, embeds, mask, **conf)
    for i, length in enumerate(PREFIX_LENGTHS):
        alone = decode(model, embeds[i: i + 1, -length:], mask[i: i + 1, -length:], **conf)
        assert_same(alone, [[(h.token_ids, h.score) for h in in_batch[i]]])


def has_repeated_ngram(ids: list[int], n: int) -> bool:
    ngrams = [tuple(ids[i: i + n]) for i in range(len(ids) - n + 1)]
    return len(ngrams) != len(set(ngrams))


@pytest.mark.parametrize("beam_size", [1, 4])
def test_no_repeat_ngram_removes_repetitions(model, batch, beam_size):
    """(c) without the constraint hypotheses repeat bigrams; with it no n-best hypothesis does."""
    conf = dict(beam_size=beam_size, nbest=beam_size, max_new_tokens=20)
    free = decode(model, *batch, **conf)
    assert any(has_repeated_ngram(h.token_ids, 2) for hyps in free for h in hyps)
    constrained = decode(model, *batch, no_repeat_ngram_size=2, **conf)
    assert not any(has_repeated_ngram(h.token_ids, 2) for hyps in constrained for h in hyps)
    assert_same(constrained, hf_generate(model, *batch, **hf_kwargs(dict(conf, no_repeat_ngram_size=2))))


def test_ngram_mask_equals_hf_processor():
    from transformers.generation.logits_process import NoRepeatNGramLogitsProcessor

    gen = torch.Generator().manual_seed(0)
    for n in (1, 2, 3):
        for length in (0, 1, 2, 5, 17):
            tokens = torch.randint(0, 5, (6, length), generator=gen)  # small vocab: many repeats
            scores = torch.zeros(6, 7)
            expected = torch.isinf(NoRepeatNGramLogitsProcessor(n)(tokens, scores))
            mask = no_repeat_ngram_mask(tokens, n, 7)
            assert torch.equal(mask if mask is not None else torch.zeros_like(expected), expected)


def sequence_logprob(model, embeds, mask, ids: list[int], with_eos: bool) -> float:
    """Teacher-forced sum of log-probs of ids (+ EOS) after the prefix of one utterance."""
    tokens = torch.tensor(ids + ([EOS] if with_eos else []))
    token_embeds = model.get_input_embeddings()(tokens)[None]  # (1, n, D)
    full = torch.cat([embeds[None], token_embeds], dim=1)  # (1, T + n, D)
    full_mask = torch.cat([mask[None], torch.ones(1, len(tokens), dtype=torch.long)], dim=1)
    with torch.no_grad():
        logits = model(inputs_embeds=full, attention_mask=full_mask,
                       position_ids=left_padded_positions(full_mask)).logits[0].float()
    logp = torch.log_softmax(logits[mask.shape[0] - 1: -1], dim=-1)  # (n, V)
    return float(logp.gather(1, tokens[:, None]).sum())


def test_length_penalty_changes_the_ranking_as_hf(model, batch):
    """(d) length_penalty reorders the n-best like generate; score = sum logprob / (len incl. EOS) ** lp."""
    embeds, mask = batch
    best = {}
    for lp in (-1.0, 0.0, 2.0):
        conf = dict(beam_size=4, nbest=4, length_penalty=lp, max_new_tokens=20)
        ours = decode(model, embeds, mask, **conf)
        assert_same(ours, hf_generate(model, embeds, mask, **hf_kwargs(conf)))
        best[lp] = [hyps[0].token_ids for hyps in ours]
        for i, hyps in enumerate(ours):
            assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
            for h in hyps[:2]:
                with_eos = len(h.token_ids) < 20
                logp = sequence_logprob(model, embeds[i], mask[i], h.token_ids, with_eos)
                length = len(h.token_ids) + with_eos
                assert h.score == pytest.approx(logp / length**lp, rel=1e-4, abs=1e-4)
    # a negative penalty prefers shorter hypotheses, a positive one longer ones
    assert best[-1.0] != best[2.0]
    assert sum(map(len, best[-1.0])) <= sum(map(len, best[0.0])) <= sum(map(len, best[2.0]))


@pytest.mark.parametrize("shared_prefix_kv", KV_MODES)
@pytest.mark.parametrize("beam_size", [1, 4])
def test_per_utterance_max_new_tokens(model, batch, beam_size, shared_prefix_kv):
    """(e) a tensor budget bounds each utterance and equals generate run with that utterance's budget."""
    embeds, mask = batch
    budgets = torch.tensor([3, 20, 1, 7, 12, 5])
    ours = decode(model, embeds, mask, budgets, beam_size=beam_size, shared_prefix_kv=shared_prefix_kv)
    for i, budget in enumerate(budgets.tolist()):
        assert len(ours[i][0].token_ids) <= budget
        ref = hf_generate(model, embeds[i: i + 1], mask[i: i + 1], num_beams=beam_size, max_new_tokens=budget)
        assert_same(ours[i: i + 1], ref)
    assert len(ours[0][0].token_ids) == 3  # the budget cut this one (it runs to 20 unbounded)


def test_through_peft_lora(model, batch):
    """(f) a LoRA-wrapped LLM: equal to the PeftModel's generate, and different from the base model."""
    import copy

    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    lora = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                           init_lora_weights=False)).eval()
    conf = dict(beam_size=4, no_repeat_ngram_size=2, max_new_tokens=20)
    ours = decode(lora, *batch, **conf)
    assert_same(ours, hf_generate(lora, *batch, **hf_kwargs(conf)))
    assert ours != decode(model, *batch, **conf)


def test_empty_hypothesis(batch):
    """Non-speech must be able to produce nothing: EOS first gives an empty hypothesis."""
    eos_model = tiny_llama()
    head = eos_model.lm_head
    eos_model.lm_head = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        eos_model.lm_head.weight.copy_(head.weight)
        eos_model.lm_head.bias.zero_()
        eos_model.lm_head.bias[EOS] = 100.0  # EOS always wins
    for beam_size in (1, 4):
        ours = decode(eos_model, *batch, beam_size=beam_size, max_new_tokens=10)
        assert all(hyps[0].token_ids == [] for hyps in ours)
        assert_same(ours, hf_generate(eos_model, *batch, num_beams=beam_size, max_new_tokens=10))


def test_unknown_or_bad_options_raise():
    """(g) unknown config keys are errors that name the key; bad values name the value."""
    with pytest.raises(ValueError, match="beam_sise"):
        BeamSearchConfig.from_dict({"beam_sise": 4})
    assert BeamSearchConfig.from_dict({"beam_size": 2, "length_penalty": 0}).length_penalty == 0.0
    with pytest.raises(ValueError, match="nbest"):
        BeamSearchConfig(beam_size=2, nbest=3)
    with pytest.raises(ValueError, match="early_stopping"):
        BeamSearchConfig(early_stopping="sometimes")


def test_input_checks(model, batch):
    embeds, mask = batch
    search = BeamSearch(model, BeamSearchConfig(eos_token_id=EOS))
    with pytest.raises(ValueError, match="LEFT-padded"):
        search(embeds, mask.flip(1))
    with pytest.raises(ValueError, match="max_new_tokens"):
        search(embeds, mask, torch.tensor([3, 4]))
    assert search(embeds[:0], mask[:0]) == []


def test_budget_from_duration():
    conf = BeamSearchConfig(max_new_tokens=100, max_tokens_per_second=4.0, max_tokens_constant=10)
    assert conf.max_new_tokens_for_duration(2.1) == 9 + 10
    assert conf.max_new_tokens_for_duration(60.0) == 100
    assert BeamSearchConfig(max_new_tokens=50).max_new_tokens_for_duration(3.0) == 50


def test_model_attention_setting_is_restored(model, batch):
    decode(model, *batch, beam_size=4, max_new_tokens=5)
    assert model.config._attn_implementation == "sdpa"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("shared_prefix_kv", KV_MODES)
def test_equals_hf_generate_on_gpu(batch, shared_prefix_kv):
    gpu_model = tiny_llama().cuda()
    embeds, mask = (x.cuda() for x in batch)
    conf = dict(beam_size=4, nbest=2, no_repeat_ngram_size=2, max_new_tokens=20)
    ours = decode(gpu_model, embeds, mask, shared_prefix_kv=shared_prefix_kv, **conf)
    assert_same(ours, hf_generate(gpu_model, embeds, mask, **hf_kwargs(conf)))
