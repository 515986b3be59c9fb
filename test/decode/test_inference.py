"""speechllm_inference on a tiny real model: ESPnet-style outputs equal to HF generate, errors that name things."""
import logging
import warnings

import numpy as np
import pytest
import soundfile
import torch
import yaml

from espnet_speechllm.bin import speechllm_inference
from espnet_speechllm.decode.beam_search import Hypothesis
from espnet_speechllm.tasks.speechllm import SpeechLLMTask

MAX_POSITIONS = 128  # tiny LLM limit: ~4 s of audio at 25 adapter frames/s


@pytest.fixture(scope="module")
def experiment(tiny_models, tmp_path_factory, make_model_args):
    """An exp dir (config.yaml + valid.acc.ave.pth) of a tiny LoRA model with non-zero LoRA weights."""
    exp = tmp_path_factory.mktemp("exp")
    args = make_model_args(tiny_models, "lora", "lora", use_preprocessor=True, text_case="keep")
    args.llm_conf["config_overrides"] = {"max_position_embeddings": MAX_POSITIONS}
    torch.manual_seed(0)
    model = SpeechLLMTask.build_model(args).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.2)
    (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), exp / "valid.acc.ave.pth")
    return exp


def write_wavs(root, durations):
    """Noise + tone utterances at 16 kHz; returns the wav.scp path."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = []
    for i, sec in enumerate(durations):
        t = np.arange(int(sec * 16000)) / 16000
        wav = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.05 * rng.standard_normal(t.size)
        path = root / f"utt{i}.wav"
        soundfile.write(path, wav.astype(np.float32), 16000)
        lines.append(f"utt{i} {path}")
    (root / "wav.scp").write_text("\n".join(lines) + "\n")
    return root / "wav.scp"


def run(experiment, wav_scp, out_dir, decode_conf, *extra):
    conf = out_dir.parent / f"{out_dir.name}.yaml"
    conf.write_text(yaml.safe_dump(decode_conf))
    speechllm_inference.main([
        "--config", str(conf), "--train_config", str(experiment / "config.yaml"),
        "--model_file", str(experiment / "valid.acc.ave.pth"),
        "--data_path_and_name_and_type", f"{wav_scp},speech,audio", "--output_dir", str(out_dir),
        "--num_workers", "0", *extra,
    ])


def read(path):
    rows = {}
    for line in path.read_text().splitlines():
        utt, _, value = line.partition(" ")
        rows[utt] = value
    return rows


DECODE = dict(beam_size=3, nbest=2, no_repeat_ngram_size=2, length_penalty=1.0, max_new_tokens=30,
              max_tokens_per_second=8.0, max_tokens_constant=2)


def test_outputs_equal_hf_generate(experiment, tmp_path, caplog):
    durations = [0.6, 1.5, 1.0, 2.2]
    wav_scp = write_wavs(tmp_path / "data", durations)
    with caplog.at_level(logging.INFO):
        run(experiment, wav_scp, tmp_path / "out", DECODE, "--batch_size", "3")
    assert any("RTF" in r.getMessage() for r in caplog.records)

    model, _ = SpeechLLMTask.build_model_from_file(experiment / "config.yaml", experiment / "valid.acc.ave.pth")
    model.eval()
    for rank in (1, 2):
        rank_dir = tmp_path / "out" / f"{rank}best_recog"
        files = {name: read(rank_dir / name) for name in ("text", "token", "token_int", "score")}
        assert all(list(rows) == [f"utt{i}" for i in range(4)] for rows in files.values())
        for i, sec in enumerate(durations):
            utt = f"utt{i}"
            wav, _ = soundfile.read(tmp_path / "data" / f"{utt}.wav", dtype="float32")
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                emb, lengths = model.encode_speech(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
                embeds, mask = model.build_prefix(emb, lengths)
                budget = int(np.ceil(8.0 * sec)) + 2
                ref = model.llm.model.generate(
                    inputs_embeds=embeds, attention_mask=mask, num_beams=3, num_return_sequences=2,
                    no_repeat_ngram_size=2, length_penalty=1.0, max_new_tokens=budget, do_sample=False,
                    eos_token_id=model.llm.eos_token_id, pad_token_id=model.llm.tokenizer.pad_token_id,
                    output_scores=True, return_dict_in_generate=True,
                )
            seq = ref.sequences[rank - 1].tolist()
            eos = model.llm.eos_token_id
            ids = seq[: seq.index(eos)] if eos in seq else seq
            assert files["token_int"][utt] == " ".join(map(str, ids)), (rank, utt)
            assert float(files["score"][utt]) == pytest.approx(float(ref.sequences_scores[rank - 1]), abs=1e-4)
            assert files["text"][utt] == " ".join(model.llm.tokenizer.decode(ids, skip_special_tokens=True).split())
            assert len(files["token"][utt].split()) == len(ids) <= budget


def test_empty_hypothesis_is_the_utterance_id_alone(tmp_path):
    class Tokenizer:
        def decode(self, ids, skip_special_tokens=True):
            return " ".join(f"w{i}" for i in ids)

        def convert_ids_to_tokens(self, ids):
            return [f"t{i}" for i in ids]

    writer = speechllm_inference.HypothesisWriter(str(tmp_path), 1, Tokenizer())
    writer.write("a", [Hypothesis([], -0.25)])
    writer.write("b", [Hypothesis([4, 5], -1.5)])
    writer.close()
    assert (tmp_path / "1best_recog" / "text").read_text() == "a\nb w4 w5\n"
    assert (tmp_path / "1best_recog" / "token").read_text() == "a\nb t4 t5\n"
    assert (tmp_path / "1best_recog" / "score").read_text() == "a -0.250000\nb -1.500000\n"


def test_utterance_beyond_the_position_limit_is_named(experiment, tmp_path):
    wav_scp = write_wavs(tmp_path / "data", [1.0, 6.0])
    with pytest.raises(ValueError, match=r"utt1.*6\.00 s.*max_position_embeddings"):
        run(experiment, wav_scp, tmp_path / "out", DECODE, "--batch_size", "2")


def test_unknown_decoding_option_is_named(experiment, tmp_path):
    wav_scp = write_wavs(tmp_path / "data", [1.0])
    with pytest.raises(ValueError, match="length_penalt"):
        run(experiment, wav_scp, tmp_path / "out", dict(beam_size=2, length_penalt=1.0))


def test_an_utterance_the_encoder_cannot_take_is_named(experiment, tmp_path):
    """Fewer samples than the encoder's receptive field (400) would fail inside its conv stack with no utterance
    id; decoding names it instead."""
    wav_scp = write_wavs(tmp_path / "data", [1.0, 0.01])  # utt1: 160 samples
    with pytest.raises(ValueError, match=r"utterance 'utt1' has 160 samples \(0.010 s\); the encoder needs at least 400"):
        run(experiment, wav_scp, tmp_path / "out", DECODE, "--batch_size", "1")


def test_joint_ctc_decoding_needs_the_adapter_ctc(experiment, tmp_path):
    wav_scp = write_wavs(tmp_path / "data", [1.0])
    with pytest.raises(ValueError, match="ctc_weight=0.3.*adapter_ctc_conf"):
        run(experiment, wav_scp, tmp_path / "out", dict(DECODE, ctc_weight=0.3))


def test_joint_ctc_decoding_runs_on_a_model_with_the_adapter_ctc(tiny_models, make_model_args, tmp_path):
    """Joint decoding through the inference tool: the model's adapter CTC gives the posteriors."""
    args = make_model_args(tiny_models, "frozen", "lora", use_preprocessor=True, text_case="keep")
    args.adapter_ctc_conf = {"weight": 1.0}
    torch.manual_seed(0)
    model = SpeechLLMTask.build_model(args).eval()
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), exp / "valid.acc.ave.pth")
    wav_scp = write_wavs(tmp_path / "data", [0.8, 1.6])
    run(exp, wav_scp, tmp_path / "out", dict(beam_size=2, max_new_tokens=20, ctc_weight=0.5), "--batch_size", "2")
    assert set(read(tmp_path / "out" / "1best_recog" / "token_int")) == {"utt0", "utt1"}
