"""Real files no one here wrote (``../shared/fixtures``, next to the repo; SOURCES.md in each folder): the
vicuna-7b-v1.5 config/tokenizer files and the LibriSpeech dev reference transcripts. Tests skip, saying so, when
they are absent."""
import os

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.abspath(os.path.join(REPO, "..", "shared", "fixtures"))
VICUNA_DIR = os.path.join(FIXTURES, "real_hf_files", "vicuna-7b-v1.5")
VICUNA_FILES = ("config.json", "generation_config.json", "tokenizer_config.json", "special_tokens_map.json",
                "tokenizer.model")
LIBRISPEECH_TEXT = os.path.join(FIXTURES, "librispeech_text")
DEV_SETS = ("dev_clean", "dev_other")
LIBRISPEECH_CONF = os.path.join(REPO, "egs2", "librispeech_llm", "asr1", "conf")
PAPER_TRAIN_YAML = os.path.join(LIBRISPEECH_CONF, "train_hubert_conv1dmlp_vicuna_lora.yaml")


def dev_text(name: str) -> str:
    return os.path.join(LIBRISPEECH_TEXT, f"{name}.txt")


def _missing(paths) -> list:
    return [p for p in paths if not os.path.isfile(p)]


needs_vicuna = pytest.mark.skipif(
    bool(_missing(os.path.join(VICUNA_DIR, f) for f in VICUNA_FILES)),
    reason=f"the real vicuna-7b-v1.5 files are not in {VICUNA_DIR} (../shared/fixtures next to the repo)")
needs_librispeech = pytest.mark.skipif(
    bool(_missing(dev_text(s) for s in DEV_SETS)),
    reason=f"the LibriSpeech dev transcripts are not in {LIBRISPEECH_TEXT} (../shared/fixtures next to the repo)")


@pytest.fixture(scope="session")
def vicuna_tokenizer():
    if _missing(os.path.join(VICUNA_DIR, f) for f in VICUNA_FILES):
        pytest.skip(f"the real vicuna-7b-v1.5 files are not in {VICUNA_DIR}")
    from espnet_speechllm.llm.hf_causal_lm import load_tokenizer

    return load_tokenizer(VICUNA_DIR)


@pytest.fixture(scope="session")
def dev_refs():
    """{set: {utt: transcript}} of LibriSpeech dev-clean and dev-other."""
    if _missing(dev_text(s) for s in DEV_SETS):
        pytest.skip(f"the LibriSpeech dev transcripts are not in {LIBRISPEECH_TEXT}")
    from espnet_speechllm.scoring.text_normalize import read_text

    return {s: read_text(dev_text(s)) for s in DEV_SETS}
