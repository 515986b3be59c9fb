"""Causal LLM interface: what the model and the decoder need of an LLM, so that ``SpeechLLMModel`` does not reach
into a particular library's model (embedding table, decoder stack, LM head)."""
from abc import ABC, abstractmethod
from typing import Optional, Set

import torch

from espnet_speechllm.llm.prompt import PromptTemplate


class AbsLLM(torch.nn.Module, ABC):
    """Token ids or input embeddings -> hidden states -> next-token logits.

    Attributes every LLM sets: ``hidden_size`` (D, the adapter's output size), ``eos_token_id``, ``tokenizer``,
    ``prompt`` (the :class:`PromptTemplate` around the speech) and ``max_positions`` (None when unbounded).
    """

    hidden_size: int
    eos_token_id: int
    prompt: PromptTemplate
    max_positions: Optional[int]

    @abstractmethod
    def embed(self, token_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, D) input embeddings (ids < 0 are padding, embedded as id 0)."""

    def embedding_table(self) -> torch.Tensor:
        """(V, D) input embedding weights (the adapter-CTC loss scores frames against them)."""
        return self.embed(torch.arange(len(self.tokenizer), device=next(self.parameters()).device))

    @abstractmethod
    def decoder_forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L, D) input embeddings and (B, L) attention mask -> (B, L, D) last hidden states."""

    @abstractmethod
    def lm_head(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., D) hidden states -> (..., V) next-token logits."""

    def base_model_dir(self) -> Optional[str]:
        """The model dir whose frozen weights a checkpoint leaves out and relies on (None: none)."""
        return None

    def reloadable_keys(self) -> Set[str]:
        """``state_dict`` keys (relative to this module) of frozen weights that are reloaded from a pretrained dir
        whenever the LLM is built, so checkpoints may leave them out. None by default."""
        return set()
