"""Writing 16-bit audio into a kaldiio ark and its scp, as wav or flac (both read back with kaldiio.load_mat)."""
import kaldiio
import numpy as np


class ArkWriter:
    """Appends (rate, int16 samples) to one ark and its scp: wav through kaldiio.WriteHelper, flac through
    kaldiio.save_ark (both read back with kaldiio.load_mat)."""

    def __init__(self, ark: str, scp: str, audio_format: str):
        self.audio_format = audio_format
        if audio_format == "wav":
            self.helper = kaldiio.WriteHelper(f"ark,scp:{ark},{scp}", write_function="soundfile")
        else:
            self.ark, self.scp = open(ark, "wb"), open(scp, "w", encoding="utf-8")

    def __call__(self, key: str, rate: int, samples: np.ndarray) -> None:
        if self.audio_format == "wav":
            self.helper(key, (rate, samples))
        else:
            kaldiio.save_ark(self.ark, {key: (rate, samples)}, scp=self.scp, write_function="soundfile",
                                  write_kwargs={"format": "flac", "subtype": "PCM_16"})

    def close(self) -> None:
        if self.audio_format == "wav":
            self.helper.close()
        else:
            self.ark.close()
            self.scp.close()
