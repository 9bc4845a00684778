"""Shared test fixtures.

``shared_data`` is ``../shared/data`` next to the repository (present for developers and CI, absent
for a user's clone): tests that need it take the fixture and are skipped cleanly without it.
Small real samples that every run needs are vendored under ``tests/fixtures/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
SHARED_DATA = Path(os.environ.get("LEADS_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data not present ({SHARED_DATA})")
    return SHARED_DATA
