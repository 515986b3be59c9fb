"""espnet_speechllm: ESPnet-style recipes for LLM-based speech recognition (Pham et al., arXiv 2406.17272)."""
from setuptools import find_packages, setup

setup(
    name="espnet_speechllm",
    version="0.1.0",
    description="Speech encoder -> adapter -> LLM ASR on ESPnet's task/trainer, with matching loss and "
    "insertion-error reduction",
    packages=find_packages(include=["espnet_speechllm", "espnet_speechllm.*"]),
    python_requires=">=3.10",
    # The pinned stack is installed by tools/ (see tools/requirements.txt); here only what the code imports.
    install_requires=[
        "torch",
        "espnet",
        "transformers",
        "peft",
        "sentencepiece",
        "kaldiio",
        "soundfile",
        "jiwer",
        "tqdm",
        "matplotlib",
        "pyyaml",
    ],
    entry_points={},
)
