"""Prompt template with one ``<speech>`` slot (docs/training.md, "Notes on the model": the LLM input), tokenized once
into prefix/suffix ids."""
from typing import List

SPEECH_SLOT = "<speech>"
DEFAULT_TEMPLATE = "USER: <speech> Transcribe the audio. ASSISTANT:"


class PromptTemplate:
    """Splits ``template`` at ``<speech>``; ``before_ids`` includes BOS when the tokenizer has one.

    Layout of an LLM input: ``[BOS] before <speech embeddings> after | transcript EOS``.
    """

    def __init__(self, template: str, tokenizer):
        if template.count(SPEECH_SLOT) != 1:
            raise ValueError(f"llm_conf.prompt_template must contain {SPEECH_SLOT!r} exactly once: {template!r}")
        before, after = (part.strip() for part in template.split(SPEECH_SLOT))
        self.template = template
        self.before_ids: List[int] = tokenizer(before, add_special_tokens=False).input_ids if before else []
        self.after_ids: List[int] = tokenizer(after, add_special_tokens=False).input_ids if after else []
        if tokenizer.bos_token_id is not None:
            self.before_ids = [tokenizer.bos_token_id] + self.before_ids
