"""The library fitted to the model: prompts the sampler cannot take are dropped (and said), and
`max_question_tokens` counts the model's tokens once a tokenizer is known. Pure: no JAX."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from autocurriculum.data.items import DataSettingError
from autocurriculum.library import SourceLibrary
from autocurriculum.policy import load

from .conftest import REPO

FAST_POLICY = REPO / "tests" / "policies" / "fast.toml"


def library(*sets: str) -> SourceLibrary:
    policy = load(FAST_POLICY, overrides=["eval.sources=[\"arithmetic_test\"]", *sets])
    return SourceLibrary(policy, base_dir=FAST_POLICY.parent, cache_dir=None)


def characters(texts: Sequence[str]) -> list[int]:
    """A stand-in tokenizer: one token per character, so lengths are known exactly."""
    return [len(text) for text in texts]


def test_prompts_longer_than_max_prompt_tokens_leave_sources_pools_and_held_out_items() -> None:
    lib = library()
    prompts = sorted(len(item.prompt) for item in lib.items("arithmetic"))
    limit = prompts[len(prompts) // 2]  # about half of them are too long
    before = {key: len(pool) for key, pool in lib.pools.items()}
    dropped = lib.fit_to_model(characters, limit)
    assert all(len(item.prompt) <= limit for pool in lib.pools.values() for item in pool)
    assert all(len(item.prompt) <= limit for item in lib.heldout())
    parts = {d.part: d for d in dropped}
    assert "source arithmetic" in parts and "source arithmetic_test" in parts
    for key, pool in lib.pools.items():
        if len(pool) < before[key]:
            assert parts[f"pool {key}"].dropped == before[key] - len(pool)
            assert parts[f"pool {key}"].kept == len(pool)
    assert all("training.max_prompt_tokens = " + str(limit) in d.reason for d in dropped)


def test_nothing_is_dropped_when_every_prompt_fits() -> None:
    lib = library()
    pools = {key: list(pool) for key, pool in lib.pools.items()}
    assert lib.fit_to_model(characters, 10**6) == []
    assert lib.pools == pools


def test_a_limit_no_prompt_fits_is_a_setting_error_naming_the_field() -> None:
    with pytest.raises(DataSettingError, match=r"training\.max_prompt_tokens: 5 tokens hold no prompt of source"):
        library().fit_to_model(characters, 5)


def test_max_question_tokens_counts_the_models_tokens_once_it_is_known() -> None:
    """Words first (no tokenizer while loading), then the model's tokens: here characters, far more."""
    lib = library("phases[0].data[0].subset.max_question_tokens=70")
    key = next(key for key in lib.pools if key.endswith("|70"))
    assert any(len(item.question) > 70 for item in lib.pools[key])  # words let long questions through
    dropped = lib.fit_to_model(characters, 10**6)
    assert lib.pools[key] and all(len(item.question) <= 70 for item in lib.pools[key])
    assert any(d.part == f"pool {key}" and "max_question_tokens = 70" in d.reason for d in dropped)
