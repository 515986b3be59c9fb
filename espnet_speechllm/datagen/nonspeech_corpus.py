"""The non-speech corpus (recipe stage 2): train and test splits with EMPTY transcripts and a noise bank for
augmentation that shares no source audio with the test split, from MUSAN (datagen/nonspeech_musan.py) or
synthesized with sox (datagen/nonspeech_sox.py), written as Kaldi data dirs with utt2category."""
import collections
import logging
import os
import time
from typing import Any, Mapping

from espnet_speechllm.data.kaldi_dir import DataDir, DoneMarker, write_data_dir
from espnet_speechllm.datagen.nonspeech import SPLITS
from espnet_speechllm.datagen.nonspeech_musan import musan_splits
from espnet_speechllm.datagen.nonspeech_sox import sox_splits
from espnet_speechllm.utils.cli import UserError

logger = logging.getLogger(__name__)

# The options of each source: the done-marker records those of the source used, not the other's.
MUSAN_OPTIONS = ("musan_dir", "categories", "bank_categories", "test_ratio", "min_chunk_seconds", "max_chunk_seconds",
                 "max_train_utts", "max_test_utts", "max_bank_utts")
SOX_OPTIONS = ("audio_dir", "speech_scp", "num_train", "num_test", "num_bank", "min_seconds", "max_seconds", "nj")


def make_nonspeech_corpus(source: str, data_dir: str, train_name: str, test_name: str, bank_name: str, seed: int,
                          options: Mapping[str, Any], force: bool = False) -> None:
    """Writes <data_dir>/{train_name,test_name,bank_name}; ``options`` holds at least the options of ``source``
    (``MUSAN_OPTIONS`` or ``SOX_OPTIONS``), those of the other source are ignored. Skips a corpus done with these
    settings."""
    start = time.time()
    names = {"train": train_name, "test": test_name, "bank": bank_name}
    dirs = {s: os.path.join(data_dir, n) for s, n in names.items()}
    own = {k: options[k] for k in (MUSAN_OPTIONS if source == "musan" else SOX_OPTIONS)}
    settings = dict(source=source, data_dir=data_dir, train_name=train_name, test_name=test_name,
                    bank_name=bank_name, seed=seed, **own)
    marker = DoneMarker(os.path.join(dirs["test"], ".nonspeech.done"), settings, force=force,
                        what="non-speech corpus")
    if marker.start(list(dirs.values())):
        return
    out = musan_splits(seed=seed, **own) if source == "musan" else sox_splits(seed=seed, **own)
    test_sources = {e for e, _ in out["test"].values()}
    if any(e in test_sources for e, _ in out["bank"].values()):
        raise AssertionError("noise bank and non-speech test share audio")
    for split in SPLITS:
        if not out[split]:
            raise UserError(f"{dirs[split]} would be empty; check the MUSAN layout and the size options")
        items = out[split]
        data = DataDir(wav_scp={u: e for u, (e, _) in items.items()}, utt2spk={u: u for u in items},
                       text={u: "" for u in items}, extra={"utt2category": {u: c for u, (_, c) in items.items()}})
        write_data_dir(dirs[split], data)
        counts = collections.Counter(c for _, c in items.values())
        logger.info("%s: %d utterances (%s)", dirs[split], len(items),
                    ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    marker.write()
    logger.info("non-speech corpus done in %.0f s", time.time() - start)
