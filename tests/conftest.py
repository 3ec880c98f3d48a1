"""Shared test helpers: paths to the repository, its policies and GSM8K (found by one resolver)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from autocurriculum.data.gsm8k_files import Gsm8kNotFound, locate_gsm8k

REPO = Path(__file__).resolve().parents[1]
try:
    GSM8K = locate_gsm8k(REPO)
except Gsm8kNotFound as error:  # one clear message instead of a collection error per test module
    print(f"autocurriculum tests: {error}", file=sys.stderr)
    raise SystemExit(66) from None  # EX_NOINPUT: the suite's input data is missing


@pytest.fixture
def tiny_text() -> str:
    return (REPO / "policies" / "tiny.toml").read_text()


@pytest.fixture
def default_text() -> str:
    return (REPO / "policies" / "default.toml").read_text()
