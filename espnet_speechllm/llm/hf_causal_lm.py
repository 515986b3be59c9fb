"""Causal LLM from a local HF dir (vicuna-7b-v1.5 / Llama layout) with its tokenizer and prompt template."""
import logging
from typing import Any, Dict, Optional

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from espnet_speechllm.finetune import FrozenWeightsFromDir, apply_finetune_scheme
from espnet_speechllm.llm.abs_llm import AbsLLM
from espnet_speechllm.llm.prompt import DEFAULT_TEMPLATE, PromptTemplate
from espnet_speechllm.utils.local_dir import local_model_dir

logger = logging.getLogger(__name__)
# Per-shard loading bars would flood training and decoding logs.
transformers.utils.logging.disable_progress_bar()

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_tokenizer(model_dir: str):
    tokenizer = AutoTokenizer.from_pretrained(local_model_dir(model_dir, "llm_conf.model_dir", needs=None))
    if tokenizer.eos_token_id is None:
        raise ValueError(f"tokenizer in {model_dir!r} has no EOS token")
    return tokenizer


class HFCausalLM(FrozenWeightsFromDir, AbsLLM):
    """Wraps ``AutoModelForCausalLM`` + ``AutoTokenizer`` from ``model_dir``.

    Args:
        model_dir: local HF dir holding config, weights and tokenizer (tokenizer.model or tokenizer.json).
        random_init: build the architecture from the dir's config with random weights (benchmarks, tests).
        config_overrides: HF config fields to override.
        finetune: ``frozen | lora | full`` (paper Sec. 2.1); paper LoRA: r=16, alpha=16.
        lora_conf: see ``espnet_speechllm.finetune.LORA_KEYS``.
        prompt_template: text with one ``<speech>`` slot.
        weight_dtype: dtype the pretrained weights are held in (bfloat16 halves a frozen 7B LLM's memory;
            trainable LoRA weights stay float32).
        attn_implementation: ``sdpa`` (default) or ``eager``.
        gradient_checkpointing: recompute LLM activations in backward (memory for compute).
    """

    def __init__(
        self,
        model_dir: str,
        random_init: bool = False,
        config_overrides: Optional[Dict[str, Any]] = None,
        finetune: str = "lora",
        lora_conf: Optional[Dict[str, Any]] = None,
        prompt_template: str = DEFAULT_TEMPLATE,
        weight_dtype: str = "float32",
        attn_implementation: str = "sdpa",
        gradient_checkpointing: bool = False,
    ):
        super().__init__()
        if weight_dtype not in DTYPES:
            raise ValueError(f"llm_conf.weight_dtype={weight_dtype!r}; choose one of {sorted(DTYPES)}")
        self.tokenizer = load_tokenizer(model_dir)
        self.weights_from_dir = not random_init
        self.model_dir = model_dir
        config = AutoConfig.from_pretrained(local_model_dir(model_dir, "llm_conf.model_dir"), **(config_overrides or {}))
        if random_init:
            self.model = AutoModelForCausalLM.from_config(config, dtype=DTYPES[weight_dtype],
                                                          attn_implementation=attn_implementation)
        else:
            self.model = AutoModelForCausalLM.from_pretrained(model_dir, config=config, dtype=DTYPES[weight_dtype],
                                                              attn_implementation=attn_implementation)
        if self.model.get_input_embeddings().num_embeddings < len(self.tokenizer):
            raise ValueError(
                f"{model_dir}: tokenizer has {len(self.tokenizer)} tokens but the model embeds only "
                f"{self.model.get_input_embeddings().num_embeddings}"
            )
        self.finetune = finetune
        self.model = apply_finetune_scheme(self.model, finetune, lora_conf, where="llm_conf")
        if finetune == "lora":
            # Trainable LoRA weights in float32 even when the frozen base is bf16 (optimizer precision).
            for name, p in self.model.named_parameters():
                if p.requires_grad:
                    p.data = p.data.float()
        if gradient_checkpointing:
            self.model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        self.prompt = PromptTemplate(prompt_template, self.tokenizer)
        self.hidden_size = config.hidden_size
        self.eos_token_id = self.tokenizer.eos_token_id
        self.max_positions = getattr(config, "max_position_embeddings", None)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.finetune == "frozen":
            self.model.eval()
        return self

    def embed(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(token_ids.clamp(min=0))

    def embedding_table(self) -> torch.Tensor:
        return self.model.get_input_embeddings().weight

    def decoder_forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.get_decoder()(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state

    def lm_head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.get_output_embeddings()(hidden)
