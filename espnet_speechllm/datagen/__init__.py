"""Data side of the recipes: synthetic corpus (sentences, espeak-ng speech, sox non-speech), noise mixing, and
the worker pool, failure tally and progress of the data steps. Kaldi data-dir I/O is espnet_speechllm.data.kaldi_dir."""
