"""Shared test helpers: paths to the repository, its policies and the shared data."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
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


# `make test-fast` sets this: the fast tier must run without JAX (or Tunix, or Flax) ever being imported
FAST_TIER = "AUTOCURRICULUM_FAST_TIER"


@pytest.fixture(scope="session", autouse=True)
def fast_tier_imports_no_jax() -> Iterator[None]:
    """At the end of the session (of each worker), fail if the fast tier imported JAX, Tunix or Flax."""
    yield
    if os.environ.get(FAST_TIER):
        loaded = sorted(name for name in ("jax", "tunix", "flax") if name in sys.modules)
        assert not loaded, f"the fast tier imported {', '.join(loaded)}: it must run without them"
