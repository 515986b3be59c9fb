"""Data side of the recipes: synthetic corpus (sentences, espeak-ng speech, sox non-speech), Kaldi
data-dir I/O, audio reading for wav.scp entries, noise mixing, and progress reporting."""
