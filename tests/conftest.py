"""Shared fixtures for the test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # GUI tests never need a display

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
# Real public data lives next to the checkout (../shared/realdata); some checkouts carry it as shared/.
REALDATA_CANDIDATES = (REPO.parent / "shared" / "realdata", REPO / "shared" / "realdata")


@pytest.fixture
def data_dir() -> Path:
    """tests/data: small slices of permissively licensed real data."""
    return DATA


@pytest.fixture
def realdata() -> Path:
    """The shared real-data folder (read-only); skips the test when it is not there."""
    for cand in REALDATA_CANDIDATES:
        if (cand / "SOURCES.md").is_file():
            return cand
    pytest.skip("shared/realdata is not available")
