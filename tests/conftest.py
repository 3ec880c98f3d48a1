"""Shared test helpers: paths to the repository, its policies and GSM8K (found by one resolver)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from autocurriculum.data.gsm8k_files import Gsm8kNotFound, locate_gsm8k
from autocurriculum.exits import EX_NOINPUT

REPO = Path(__file__).resolve().parents[1]
try:
    GSM8K = locate_gsm8k(REPO)
except Gsm8kNotFound as error:  # one clear message instead of a collection error per test module
    print(f"autocurriculum tests: {error}", file=sys.stderr)
    raise SystemExit(EX_NOINPUT) from None  # the suite's input data is missing


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
