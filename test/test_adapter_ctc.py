"""Adapter CTC (loss/adapter_ctc.py): CTC of adapter frames against the LLM's embedding table."""
import pytest
import torch

from espnet_speechllm.loss.adapter_ctc import AdapterCTCLoss, greedy_ctc_ids
from espnet_speechllm.tasks.speechllm import SpeechLLMTask


def test_frames_equal_to_the_embeddings_score_low_and_shuffled_ones_high():
    """Frames that ARE the transcript's embeddings, blank-padded, cost little; the same frames for another
    transcript cost much more: the loss measures which tokens the frames say."""
    torch.manual_seed(0)
    table = torch.randn(20, 16)
    loss = AdapterCTCLoss(blank_id=0, temperature=0.1)
    text = torch.tensor([[3, 7, 7, 12], [5, 9, -1, -1]])
    text_lengths = torch.tensor([4, 2])
    frames = torch.zeros(2, 10, 16)
    for b, ids in enumerate(([3, 0, 7, 0, 7, 12, 0, 0, 0, 0], [5, 5, 0, 9, 0, 0, 0, 0, 0, 0])):
        frames[b] = table[ids]
    lengths = torch.tensor([10, 8])
    right = loss(frames, lengths, text, text_lengths, table)["loss"]
    wrong = loss(frames, lengths, torch.tensor([[12, 3, 5, 9], [7, 12, -1, -1]]), text_lengths, table)["loss"]
    assert right < 0.1 and wrong > 10 * right, (float(right), float(wrong))
    # Greedy read-out: the blank between the two 7s keeps them apart, repeats merge, blanks go.
    best = loss.logits(frames, table).argmax(-1)
    assert [greedy_ctc_ids(best[b, :n], 0) for b, n in enumerate(lengths)] == [[3, 7, 7, 12], [5, 9]]


def test_blank_in_a_transcript_is_refused():
    loss = AdapterCTCLoss(blank_id=4)
    with pytest.raises(ValueError, match="blank_id=4 occurs in a transcript"):
        loss(torch.randn(1, 6, 8), torch.tensor([6]), torch.tensor([[1, 4]]), torch.tensor([2]), torch.randn(10, 8))


def test_task_builds_it_with_the_unk_blank_and_training_lowers_it(tiny_models, make_model_args):
    """Built from adapter_ctc_conf (blank = the tokenizer's unk); its term is in the loss and the stats, and a
    few adapter steps on one batch lower it."""
    torch.manual_seed(0)
    args = make_model_args(tiny_models, "frozen", "full")
    args.adapter_ctc_conf = {"weight": 1.0}
    model = SpeechLLMTask.build_model(args)
    assert model.adapter_ctc.blank_id == model.llm.tokenizer.unk_token_id
    speech = torch.randn(2, 16000)
    speech_lengths = torch.tensor([16000, 12000])
    text = torch.tensor([[5, 6, 7], [9, 10, -1]])
    text_lengths = torch.tensor([3, 2])
    opt = torch.optim.Adam(model.adapter.parameters(), lr=3e-3)
    history = []
    for _ in range(30):
        loss, stats, _ = model(speech, speech_lengths, text, text_lengths)
        history.append(float(stats["loss_adapter_ctc"]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert history[-1] < 0.5 * history[0], history[::10]
    # The term alone moves the adapter, never the LLM (fully trainable here): its embedding table is a fixed target.
    model.zero_grad(set_to_none=True)
    emb, emb_lengths = model.encode_speech(speech, speech_lengths)
    model.adapter_ctc(emb, emb_lengths, text, text_lengths, model.llm.embedding_table())["loss"].backward()
    assert all(p.grad is None for p in model.llm.parameters())
    assert all(p.grad is not None for p in model.adapter.parameters())
    assert float(stats["adapter_ctc_too_short"]) == 0


def test_unknown_key_is_refused(tiny_models, make_model_args):
    args = make_model_args(tiny_models)
    args.adapter_ctc_conf = {"weight": 1.0, "temprature": 0.1}
    with pytest.raises(ValueError, match="unknown key"):
        SpeechLLMTask.build_model(args)
