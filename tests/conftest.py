"""Shared test helpers: paths to the repository, its policies and the shared data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
GSM8K = SHARED_DATA / "gsm8k"


@pytest.fixture
def tiny_text() -> str:
    return (REPO / "policies" / "tiny.toml").read_text()


@pytest.fixture
def default_text() -> str:
    return (REPO / "policies" / "default.toml").read_text()
