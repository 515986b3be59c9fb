"""plot_matching_attention tokenizes the transcript as training did: text_case folding included."""
import argparse
import os

from espnet_speechllm.llm.hf_causal_lm import load_tokenizer
from espnet_speechllm.report.matching_attention import transcript_ids

LLM_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "egs2/synth_llm/asr1/pretrained_models/llm")


def test_transcript_ids_fold_case_as_training():
    tok = load_tokenizer(LLM_DIR)
    lower, upper = (tok(t, add_special_tokens=False).input_ids for t in ("hello  world", "HELLO WORLD"))
    assert lower != upper
    for case, want in (("lower", tok("hello world", add_special_tokens=False).input_ids), ("keep", upper)):
        args = argparse.Namespace(use_preprocessor=True, text_case=case, llm_conf={"model_dir": LLM_DIR})
        assert transcript_ids(args, "HELLO  WORLD") == want
