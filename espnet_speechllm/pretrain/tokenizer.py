"""Train a sentencepiece BPE model and save it as a Llama-layout HF tokenizer dir (``tokenizer.model``).

The dir then loads through ``AutoTokenizer.from_pretrained`` exactly as vicuna-7b-v1.5's does.
"""
import json
import os

import sentencepiece as spm


def train_llama_tokenizer(text_file: str, out_dir: str, vocab_size: int) -> None:
    os.makedirs(out_dir, exist_ok=True)
    prefix = os.path.join(out_dir, "tokenizer")
    spm.SentencePieceTrainer.train(
        input=text_file,
        model_prefix=prefix,
        vocab_size=vocab_size,
        model_type="bpe",
        byte_fallback=True,  # any text (accents, digits, symbols) stays encodable
        character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,  # Llama's special-token ids
        hard_vocab_limit=False,
        minloglevel=2,
    )
    os.remove(prefix + ".vocab")
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(
            {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
             "add_bos_token": True, "add_eos_token": False, "legacy": False},
            f, indent=2,
        )
