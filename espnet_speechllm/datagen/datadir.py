"""Moved to :mod:`espnet_speechllm.data.kaldi_dir`; this name stays for bin/plot_matching_attention.py."""
from espnet_speechllm.data.kaldi_dir import read_kaldi_file  # noqa: F401
