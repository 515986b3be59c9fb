"""Scoring (recipe stage 12): text normalization, NIST sclite, hallucination metrics."""
