"""Extraction: documents, PICO spans, study characteristics, arms, participant statistics, trial results."""
