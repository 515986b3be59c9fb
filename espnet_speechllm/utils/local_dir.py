"""The one check every ``from_pretrained`` of the package goes through: models are read from local dirs only.

``from_pretrained("lmsys/vicuna-7b-v1.5")`` with no such dir would ask the Hugging Face hub (a network call at
training or decoding time). ``local_model_dir`` refuses any name that is not a local dir holding the file the
loader needs, with the fix; ``path.sh`` also sets ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1``.
"""
import os

from espnet_speechllm.utils.cli import UserError


def local_model_dir(model_dir: str, what: str, needs: str = "config.json") -> str:
    """``model_dir`` when it is a local dir holding ``needs`` (None: any dir); else a ValueError naming it."""
    if not isinstance(model_dir, (str, os.PathLike)) or not os.path.isdir(model_dir):
        raise UserError(
            f"{what}={model_dir!r} is not a local directory; models are read from local HF-format dirs only "
            "(nothing is downloaded at run time): download it once, e.g. `huggingface-cli download <name> "
            "--local-dir <dir>`, and give that dir, or run stage 7")
    if needs and not os.path.isfile(os.path.join(model_dir, needs)):
        raise UserError(f"{what}={model_dir!r} holds no {needs}; put a local HF-format model there or run stage 7")
    return str(model_dir)
