"""Joint CTC/attention decoding (decode/ctc_prefix.py): CTC prefix scores steer the LLM's beam search.

The LLM is a tiny random Llama with peaked outputs (it writes its own token strings, unrelated to the CTC); the
CTC posteriors spell known token sequences, one token for a few frames with blanks between.
"""
import pytest
import torch

from espnet_speechllm.decode.beam_search import BeamSearch, CTCInputs, left_padded_positions
from espnet_speechllm.decode.config import BeamSearchConfig
from espnet_speechllm.utils.cli import UserError

from .test_beam_search import EOS, prefix_batch, tiny_llama

BLANK, VOCAB = 3, 64
SEQUENCES = [[5, 9, 9, 40], [17], [], [33, 8, 61, 12, 20, 7], [50, 50, 50]]


def ctc_inputs(sequences, peak: float = 0.9, frames_per_token: int = 3) -> CTCInputs:
    """Log-posteriors (B, T, V) whose best CTC path spells each sequence; ``peak`` on the path, the rest spread."""
    paths = []
    for seq in sequences:
        path = [BLANK]
        for token in seq:
            path += [token] * frames_per_token + [BLANK]
        paths.append(path)
    num_frames = max(len(p) for p in paths)
    probs = torch.full((len(paths), num_frames, VOCAB), (1.0 - peak) / (VOCAB - 1))
    for b, path in enumerate(paths):
        for t, token in enumerate(path):
            probs[b, t, token] = peak
    return CTCInputs(probs.log(), torch.tensor([len(p) for p in paths]), BLANK)


def decode(sequences, ctc_weight: float, beam_size: int = 4, peak: float = 0.9, **conf):
    model = tiny_llama()
    embeds, mask = prefix_batch(lengths=[5, 9, 12, 7, 3][: len(sequences)])
    search = BeamSearch(model, BeamSearchConfig(beam_size=beam_size, eos_token_id=EOS, max_new_tokens=12,
                                                ctc_weight=ctc_weight, **conf))
    return search(embeds, mask, ctc=ctc_inputs(sequences, peak) if ctc_weight > 0 else None)


@pytest.mark.parametrize("beam_size", [1, 4])
def test_ctc_steers_the_llm_to_the_spoken_tokens(beam_size):
    alone = [hyps[0].token_ids for hyps in decode(SEQUENCES, 0.0, beam_size)]
    assert sum(h == s for h, s in zip(alone, SEQUENCES)) <= 1  # the LLM alone writes other strings
    joint = [hyps[0].token_ids for hyps in decode(SEQUENCES, 0.7, beam_size)]
    assert joint == SEQUENCES  # repeated tokens, an empty transcript and different lengths included


def test_batch_equals_one_by_one():
    """Utterances that finish early leave the batch; the others keep their own CTC rows."""
    batch = decode(SEQUENCES, 0.3, peak=0.5)
    for i, seq in enumerate(SEQUENCES):
        model = tiny_llama()
        embeds, mask = prefix_batch(lengths=[5, 9, 12, 7, 3][: len(SEQUENCES)])
        search = BeamSearch(model, BeamSearchConfig(beam_size=4, eos_token_id=EOS, max_new_tokens=12, ctc_weight=0.3))
        alone = search(embeds[i : i + 1, -mask[i].sum():], mask[i : i + 1, -mask[i].sum():],
                       ctc=ctc_inputs([seq], peak=0.5))[0]
        assert [h.token_ids for h in alone] == [h.token_ids for h in batch[i]]
        assert alone[0].score == pytest.approx(batch[i][0].score, abs=1e-4)


def test_partial_scoring_matches_full_scoring():
    """ESPnet's partial scoring (the LLM's pre-beam only) gives the same search when no needed token is cut."""
    full = decode(SEQUENCES, 0.3, peak=0.5)
    partial = decode(SEQUENCES, 0.3, peak=0.5, ctc_pre_beam=VOCAB - 1)
    assert [[h.token_ids for h in hyps] for hyps in partial] == [[h.token_ids for h in hyps] for hyps in full]
    torch.testing.assert_close(torch.tensor([h[0].score for h in partial]), torch.tensor([h[0].score for h in full]))


def test_bad_settings_are_named():
    with pytest.raises(UserError, match="ctc_weight"):
        BeamSearchConfig(ctc_weight=1.5)
    with pytest.raises(UserError, match="ctc_pre_beam"):
        BeamSearchConfig(ctc_pre_beam=-1)
    embeds, mask = prefix_batch(lengths=[4, 6])
    search = BeamSearch(tiny_llama(), BeamSearchConfig(eos_token_id=EOS, ctc_weight=0.3))
    with pytest.raises(ValueError, match="needs CTC posteriors"):
        search(embeds, mask)
    with pytest.raises(ValueError, match="do not match"):
        search(embeds, mask, ctc=ctc_inputs([[5]]))


@pytest.mark.parametrize("ctc_weight", [0.0, 0.7])
def test_no_speech_gate_empties_what_the_llm_would_end_at_once(ctc_weight):
    """Utterances whose LLM gives EOS as the first token a probability above the threshold decode to the empty
    hypothesis, even where the CTC spells words; the others decode as without the gate."""
    model = tiny_llama()
    embeds, mask = prefix_batch(lengths=[5, 9, 12, 7, 3])
    with torch.no_grad():
        probs = model(inputs_embeds=embeds, attention_mask=mask,
                      position_ids=left_padded_positions(mask)).logits[:, -1].softmax(-1)  # (B, V)
    first = probs[:, EOS]  # (B,)
    # just below the largest EOS probability of an utterance whose most likely first token is a word
    threshold = 0.99 * float(first[probs.argmax(-1) != EOS].max())
    silent = (first > threshold).tolist()
    assert 0 < sum(silent) < len(silent)
    ctc = ctc_inputs(SEQUENCES) if ctc_weight else None

    def run(gate):
        conf = BeamSearchConfig(beam_size=4 if ctc_weight else 1, eos_token_id=EOS, max_new_tokens=12,
                                ctc_weight=ctc_weight, no_speech_threshold=gate)
        return [hyps[0].token_ids for hyps in BeamSearch(model, conf)(embeds, mask, ctc=ctc)]

    plain, gated = run(None), run(threshold)
    for i, is_silent in enumerate(silent):
        assert gated[i] == ([] if is_silent else plain[i])
    assert any(plain[i] for i in range(len(silent)) if silent[i])  # the gate changed something
    with pytest.raises(UserError, match="min_new_tokens"):
        BeamSearchConfig(no_speech_threshold=0.5, min_new_tokens=1)
