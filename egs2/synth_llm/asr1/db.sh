# shellcheck shell=bash
# Corpus locations. This recipe synthesizes its corpus (stage 1) and its models (stage 7): nothing to set.
