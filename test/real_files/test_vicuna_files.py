"""The code a vicuna-7b-v1.5 user runs, against the real config/tokenizer files of lmsys/vicuna-7b-v1.5 (no weights).

What these files hold and what the code takes from them:
- BOS ``<s>`` = 1 starts every LLM input (prompt template), EOS ``</s>`` = 2 ends every training target and every
  hypothesis (the beam search's EOS); config.json and generation_config.json agree.
- pad: tokenizer_config.json says ``pad_token: null``, but special_tokens_map.json says ``"<unk>"``, and the HF stack
  loads that: pad = ``<unk>`` = 0, equal to ``pad_token_id: 0`` of config.json and generation_config.json. No model
  input ever holds it: training pads transcripts with -1 (ignored, masked) and the prefix with an attention mask;
  the beam search uses it only to fill token slots it never feeds to the model.
"""
import json
import os
import shutil
import warnings

import pytest
import sentencepiece as spm
import torch
import transformers
import yaml

from espnet_speechllm.data.preprocess import TranscriptTokenizer
from espnet_speechllm.llm.prompt import DEFAULT_TEMPLATE, PromptTemplate

from .conftest import PAPER_TRAIN_YAML, REPO, VICUNA_DIR, VICUNA_FILES, needs_librispeech, needs_vicuna

pytestmark = needs_vicuna

# The ids of the paper's prompt: [BOS] "USER:" <speech> "Transcribe the audio. ASSISTANT:"
BEFORE_IDS = [1, 3148, 1001, 29901]  # <s> ▁US ER :
# ▁Trans cribe ▁the ▁audio . ▁A SS IST ANT :
AFTER_IDS = [4103, 29581, 278, 10348, 29889, 319, 1799, 9047, 13566, 29901]


def vicuna_copy(tmp_path, name="vicuna"):
    """A model dir holding exactly the real files (the weights are what each test adds)."""
    out = tmp_path / name
    out.mkdir()
    for f in VICUNA_FILES:
        shutil.copy(os.path.join(VICUNA_DIR, f), out / f)
    return out


def test_load_tokenizer_with_the_pinned_stack(vicuna_tokenizer):
    pins = dict(line.strip().split("==") for line in open(os.path.join(REPO, "tools", "requirements.txt"))
                if "==" in line)
    assert transformers.__version__ == pins["transformers"] and spm.__version__ == pins["sentencepiece"]
    tok = vicuna_tokenizer
    assert type(tok).__name__ == "LlamaTokenizer" and len(tok) == 32000
    # The HF tokenizer gives the ids of the sentencepiece model itself (what Vicuna was trained on).
    sp = spm.SentencePieceProcessor(model_file=os.path.join(VICUNA_DIR, "tokenizer.model"))
    for text in ("mister quilter is the apostle of the middle classes", "I'M GLAD, ISN'T IT? 1984 café",
                 DEFAULT_TEMPLATE.replace("<speech> ", "")):
        assert tok(text, add_special_tokens=False).input_ids == sp.encode(text)


def test_prompt_template_ids(vicuna_tokenizer):
    """The template split at <speech> gives the ids of the whole prompt tokenized at once; so does the full
    training sequence (prompt + transcript + EOS)."""
    tok = vicuna_tokenizer
    prompt = PromptTemplate(DEFAULT_TEMPLATE, tok)
    assert prompt.before_ids == BEFORE_IDS and prompt.after_ids == AFTER_IDS
    whole = tok("USER: Transcribe the audio. ASSISTANT:").input_ids
    assert whole == BEFORE_IDS + AFTER_IDS
    assert tok.convert_ids_to_tokens(whole) == ["<s>", "▁US", "ER", ":", "▁Trans", "cribe", "▁the", "▁audio", ".",
                                                "▁A", "SS", "IST", "ANT", ":"]
    transcript = TranscriptTokenizer(tok, text_case="lower")("u", {"text": "I'M GLAD I'M HERE"})["text"].tolist()
    assert transcript == [474, 29915, 29885, 10932, 474, 29915, 29885, 1244]  # ▁i ' m ▁glad ▁i ' m ▁here
    at_once = tok("USER: Transcribe the audio. ASSISTANT: i'm glad i'm here</s>").input_ids
    assert at_once == prompt.before_ids + prompt.after_ids + transcript + [tok.eos_token_id]


@needs_librispeech
@pytest.mark.parametrize("text_case", ["lower", "keep", "upper"])
def test_every_dev_reference_round_trips(vicuna_tokenizer, dev_refs, text_case):
    """Tokenized as in training (TranscriptTokenizer: whitespace collapsed, case folded), every LibriSpeech dev
    reference decodes back to exactly that text, and to the reference under the scoring normalization."""
    from espnet_speechllm.scoring.text_normalize import normalize_text

    preprocess = TranscriptTokenizer(vicuna_tokenizer, text_case=text_case)
    for refs in dev_refs.values():
        for utt, text in refs.items():
            ids = preprocess(utt, {"text": text})["text"].tolist()
            assert ids and vicuna_tokenizer.bos_token_id not in ids and vicuna_tokenizer.eos_token_id not in ids
            decoded = vicuna_tokenizer.decode(ids, skip_special_tokens=True)
            assert decoded == preprocess.normalize(text), utt
            assert normalize_text(decoded) == normalize_text(text), utt


def test_bos_eos_pad_are_what_the_model_and_the_search_use(vicuna_tokenizer, tmp_path):
    from transformers import AutoConfig, GenerationConfig

    from espnet_speechllm.decode.beam_search import BeamSearch
    from espnet_speechllm.decode.config import BeamSearchConfig

    tok = vicuna_tokenizer
    config = AutoConfig.from_pretrained(VICUNA_DIR)
    gen = GenerationConfig.from_pretrained(VICUNA_DIR)
    raw = json.load(open(os.path.join(VICUNA_DIR, "tokenizer_config.json")))
    assert raw["pad_token"] is None and raw["add_bos_token"] and not raw["add_eos_token"]
    assert (tok.bos_token, tok.bos_token_id) == ("<s>", 1)
    assert tok.bos_token_id == config.bos_token_id == gen.bos_token_id
    assert (tok.eos_token, tok.eos_token_id) == ("</s>", 2)
    assert tok.eos_token_id == config.eos_token_id == gen.eos_token_id
    # pad: null in tokenizer_config.json, "<unk>" in special_tokens_map.json; the latter is what loads.
    assert (tok.pad_token, tok.pad_token_id, tok.unk_token_id) == ("<unk>", 0, 0)
    assert config.pad_token_id == gen.pad_token_id == tok.pad_token_id
    assert tok("x").input_ids[0] == 1 and tok("x").input_ids[-1] != 2  # BOS added, EOS not (training adds it)
    # The search takes the same EOS and fill id from the model when the decoding config names none.
    tiny = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        **{**config.to_dict(), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
           "num_attention_heads": 2, "num_key_value_heads": 2}))
    tiny.generation_config = gen
    search = BeamSearch(tiny, BeamSearchConfig())
    assert search.eos_ids == [tok.eos_token_id] and search.fill_id == tok.pad_token_id


def tiny_vicuna(tmp_path, with_generation_config: bool):
    """vicuna-7b-v1.5's config.json at a tiny width (random weights), with or without its generation_config.json."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(VICUNA_DIR, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=4)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        model.lm_head.weight.mul_(30.0)  # peaked distributions: beams that differ
    out = tmp_path / ("with_gen" if with_generation_config else "without_gen")
    model.save_pretrained(out)
    os.remove(out / "generation_config.json")
    if with_generation_config:
        shutil.copy(os.path.join(VICUNA_DIR, "generation_config.json"), out / "generation_config.json")
    return AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()  # config.json says float16


def test_sampling_fields_of_generation_config_neither_change_nor_break_the_search(tmp_path):
    from espnet_speechllm.decode.beam_search import BeamSearch
    from espnet_speechllm.decode.config import BeamSearchConfig

    model = tiny_vicuna(tmp_path, with_generation_config=True)
    plain = tiny_vicuna(tmp_path, with_generation_config=False)
    gen = model.generation_config
    assert (gen.temperature, gen.top_p) == (0.9, 0.6) and not gen.do_sample  # no do_sample in the file
    assert plain.generation_config.temperature in (None, 1.0)
    torch.manual_seed(1)
    embeds = torch.randn(3, 6, 32)  # (B, T, D) prefix embeddings
    mask = torch.ones(3, 6, dtype=torch.long)
    conf = BeamSearchConfig(beam_size=4, nbest=2, max_new_tokens=12, no_loop_ngram_size=6, no_repeat_ngram_size=13)
    ours = BeamSearch(model, conf)(embeds, mask)
    assert ours == BeamSearch(plain, conf)(embeds, mask)  # tokens and scores: the fields change nothing
    assert len({tuple(h.token_ids) for hyps in ours for h in hyps}) > 1
    # ... and equal HF's beam search with the same generation_config (which does not sample either).
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        ref = model.generate(inputs_embeds=embeds, attention_mask=mask, num_beams=4, num_return_sequences=2,
                             max_new_tokens=12, no_repeat_ngram_size=13, output_scores=True,
                             return_dict_in_generate=True,
                             logits_processor=transformers.LogitsProcessorList([LoopRule(6)]))
    for i, hyps in enumerate(ours):
        for k, h in enumerate(hyps):
            seq = ref.sequences[2 * i + k].tolist()
            assert (seq[: seq.index(2)] if 2 in seq else seq) == h.token_ids
            assert float(ref.sequences_scores[2 * i + k]) == pytest.approx(h.score, abs=1e-4)


class LoopRule(transformers.LogitsProcessor):
    def __init__(self, n):
        self.n = n

    def __call__(self, input_ids, scores):
        from espnet_speechllm.decode.ngram import no_loop_ngram_mask

        mask = no_loop_ngram_mask(input_ids, self.n, scores.shape[-1])
        return scores if mask is None else scores.masked_fill(mask, float("-inf"))


def test_llm_from_the_real_config_has_the_paper_counts(tmp_path):
    """HFCausalLM built on the meta device from this exact config.json with the paper YAML's llm_conf."""
    from espnet_speechllm.llm.hf_causal_lm import HFCausalLM

    llm_conf = yaml.safe_load(open(PAPER_TRAIN_YAML))["llm_conf"]
    llm_conf.update(model_dir=str(vicuna_copy(tmp_path)), random_init=True)
    with torch.device("meta"):
        llm = HFCausalLM(**llm_conf)
    lora = sum(p.numel() for n, p in llm.named_parameters() if p.requires_grad)
    frozen = sum(p.numel() for n, p in llm.named_parameters() if not p.requires_grad)
    assert lora == 16_777_216  # paper: 16M (r=16 on q/k/v/o of 32 layers)
    assert frozen == 6_738_415_616  # Llama-2-7B / vicuna-7b-v1.5
    assert llm.hidden_size == 4096 and llm.max_positions == 4096 and llm.eos_token_id == 2
    assert all("lora_" in n for n, p in llm.named_parameters() if p.requires_grad)


def write_index(model_dir, index_name: str, shard_pattern: str, fake: bool):
    shards = [shard_pattern.format(i) for i in (1, 2)]
    weight_map = {f"model.layers.{i}.self_attn.q_proj.weight": shards[i % 2] for i in range(32)}
    weight_map.update({"model.embed_tokens.weight": shards[0], "lm_head.weight": shards[1]})
    (model_dir / index_name).write_text(json.dumps({"metadata": {"total_size": 13476839424},
                                                    "weight_map": weight_map}))
    for shard in shards:
        (model_dir / shard).write_bytes(b"not a real shard" if fake else b"")
    return shards


@pytest.mark.parametrize("index_name, shard_pattern", [
    ("model.safetensors.index.json", "model-0000{}-of-00002.safetensors"),
    ("pytorch_model.bin.index.json", "pytorch_model-0000{}-of-00002.bin"),
])
@pytest.mark.parametrize("fake", [False, True], ids=["empty_shards", "fake_shards"])
def test_check_pretrained_accepts_a_sharded_vicuna_dir(tmp_path, caplog, index_name, shard_pattern, fake):
    from espnet_speechllm.bin import check_pretrained
    from espnet_speechllm.utils.pretrained_dirs import check_llm

    llm_dir = vicuna_copy(tmp_path)
    shards = write_index(llm_dir, index_name, shard_pattern, fake)
    assert check_llm(str(llm_dir)) == []
    os.remove(llm_dir / shards[1])
    assert check_llm(str(llm_dir)) == [
        f"{llm_dir}: shard {shards[1]} listed in {index_name} is missing (2 shards in all)"]
    os.remove(llm_dir / shards[0])
    problems = check_llm(str(llm_dir))
    assert len(problems) == 2 and all(p.endswith(f"listed in {index_name} is missing (2 shards in all)")
                                      for p in problems)
    # the command: exit status 1, one line per missing shard
    encoder_dir = tmp_path / "hubert"
    transformers.HubertModel(transformers.HubertConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, conv_dim=[16, 16],
        conv_kernel=[10, 3], conv_stride=[5, 2], num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )).save_pretrained(encoder_dir)
    caplog.clear()
    assert check_pretrained.main(["--encoder_dir", str(encoder_dir), "--llm_dir", str(llm_dir)]) == 1
    assert [r.message for r in caplog.records if r.levelname == "ERROR"] == problems


def test_check_pretrained_names_a_broken_index(tmp_path):
    from espnet_speechllm.utils.pretrained_dirs import check_llm

    llm_dir = vicuna_copy(tmp_path)
    (llm_dir / "model.safetensors.index.json").write_text("{\"metadata\": {}")
    (problem,) = check_llm(str(llm_dir))
    assert problem.startswith(f"{llm_dir}/model.safetensors.index.json: not a weights index (JSONDecodeError")
    os.remove(llm_dir / "model.safetensors.index.json")
    (llm_dir / "model-00001-of-00002.safetensors").write_bytes(b"")
    (problem,) = check_llm(str(llm_dir))
    assert "without model.safetensors.index.json or pytorch_model.bin.index.json" in problem
