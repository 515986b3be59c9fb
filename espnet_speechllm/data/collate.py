"""Batch collation: pad speech with 0.0 and token ids with -1, and add ``*_lengths``."""
from typing import Dict, List, Tuple

import numpy as np
import torch

PAD_VALUES = {"speech": 0.0, "text": -1}


class SpeechLLMCollateFn:
    """Collate ``[(utt_id, {name: array})]`` into ``(utt_ids, {name: (B, T) tensor, name_lengths: (B,)})``.

    Written here because ``espnet2.train.collate_fn`` imports the g2p stack, which reaches for the network.
    Empty arrays (empty transcripts) are valid and give length 0.
    """

    def __call__(self, data: List[Tuple[str, Dict[str, np.ndarray]]]):
        utt_ids = [u for u, _ in data]
        batch: Dict[str, torch.Tensor] = {}
        for name in data[0][1]:
            arrays = [torch.from_numpy(np.asarray(d[name])) for _, d in data]
            lengths = torch.tensor([a.shape[0] for a in arrays], dtype=torch.long)
            max_len = int(lengths.max()) if len(arrays) else 0
            pad = PAD_VALUES.get(name, 0)
            padded = arrays[0].new_full((len(arrays), max_len) + tuple(arrays[0].shape[1:]), pad)
            for i, a in enumerate(arrays):
                padded[i, : a.shape[0]] = a
            batch[name] = padded
            batch[name + "_lengths"] = lengths
        return utt_ids, batch
