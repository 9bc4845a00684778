"""Shared helpers for the synthesis tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from leads.synthesis import SynthesisInput, load_input

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "synthesis"


@pytest.fixture(scope="session")
def synthesis_fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def bcg() -> SynthesisInput:
    return load_input(FIXTURES / "bcg.csv")
