"""The mixture stream: proportions, epochs, mixture swaps, and save/restore giving the identical sequence."""

from __future__ import annotations

import functools
import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autocurriculum.data import DataError, Item, MixtureStream, apply_subset, load_source, pool_key, to_tunix_batch
from autocurriculum.policy import Mixture, MixtureComponent, SourceSpec, SubsetSpec

from .conftest import GSM8K, REPO

GSM_SLICE = MixtureComponent("gsm8k", 1.0, SubsetSpec(0.0, 0.25))
GSM_WHOLE = MixtureComponent("gsm8k", 1.0)
ARITH_SLICE = MixtureComponent("a", 1.0, SubsetSpec(0.0, 0.3))


@functools.cache
def pools() -> dict[str, list[Item]]:
    gsm = load_source(SourceSpec("gsm8k", "gsm8k", "math", path=str(GSM8K)), seed=0, base_dir=REPO)
    arithmetic = load_source(SourceSpec("a", "arithmetic", "math", options={"count": 400}), seed=0, base_dir=REPO)
    qa = load_source(SourceSpec("qa", "qa", "qa", options={"count": 300}), seed=0, base_dir=REPO)
    return {
        pool_key(GSM_WHOLE): gsm,
        pool_key(GSM_SLICE): apply_subset(gsm, GSM_SLICE.subset, 0, "gsm8k"),
        pool_key(MixtureComponent("a", 1.0)): arithmetic,
        pool_key(ARITH_SLICE): apply_subset(arithmetic, ARITH_SLICE.subset, 0, "a"),
        pool_key(MixtureComponent("qa", 1.0)): qa,
    }


# the curriculum's shapes: a phase-1 slice, all of GSM8K, phase 3's 50/25/25, and small pools that run dry
MIXTURES = (
    Mixture((GSM_SLICE,)),
    Mixture((GSM_WHOLE,)),
    Mixture((MixtureComponent("gsm8k", 0.5), MixtureComponent("a", 0.25), MixtureComponent("qa", 0.25))),
    Mixture((ARITH_SLICE,)),
    Mixture((MixtureComponent("a", 0.75), MixtureComponent("qa", 0.25))),
)


def test_mixture_proportions_within_binomial_tolerance() -> None:
    stream = MixtureStream(pools(), MIXTURES[2], seed=5)
    sources = Counter(item.id.split("-")[0] for _ in range(100) for item in stream.next_batch(100))
    draws = sum(sources.values())
    assert draws == 10_000
    for source, weight in (("gsm8k", 0.5), ("arithmetic", 0.25), ("qa", 0.25)):
        tolerance = 4 * (weight * (1 - weight) / draws) ** 0.5
        assert abs(sources[source] / draws - weight) < tolerance, (source, sources)


def test_same_seed_same_sequence_other_seed_another() -> None:
    first = [i.id for i in MixtureStream(pools(), MIXTURES[2], seed=3).next_batch(200)]
    again = [i.id for i in MixtureStream(pools(), MIXTURES[2], seed=3).next_batch(200)]
    other = [i.id for i in MixtureStream(pools(), MIXTURES[2], seed=4).next_batch(200)]
    assert first == again and first != other


def test_no_repeat_within_an_epoch_and_a_new_epoch_is_reported() -> None:
    epochs: list[tuple[str, int]] = []
    key = pool_key(ARITH_SLICE)
    stream = MixtureStream(pools(), MIXTURES[3], seed=1, on_epoch=lambda source, epoch: epochs.append((source, epoch)))
    size = len(pools()[key])
    first = [i.id for i in stream.next_batch(size)]
    assert sorted(first) == sorted(i.id for i in pools()[key]) and not epochs
    second = [i.id for i in stream.next_batch(size)]
    assert epochs == [(key, 1)]
    assert sorted(second) == sorted(first) and second != first  # the same items, freshly shuffled


def test_a_swap_keeps_each_pools_position() -> None:
    stream = MixtureStream(pools(), MIXTURES[0], seed=2)
    before = [i.id for i in stream.next_batch(50)]
    stream.set_mixture(MIXTURES[3])
    stream.next_batch(20)
    stream.set_mixture(MIXTURES[0])
    after = [i.id for i in stream.next_batch(50)]
    straight = [i.id for i in MixtureStream(pools(), MIXTURES[0], seed=2).next_batch(100)]
    assert before + after == straight


@functools.cache
def reference_run(segments: tuple[tuple[int, int], ...], cut: int) -> tuple[dict[str, object], list[str]]:
    """Draw through all segments; return the state saved before segment `cut` and the ids after it."""
    stream = MixtureStream(pools(), MIXTURES[segments[0][1]], seed=9)
    state: dict[str, object] = {}
    after: list[str] = []
    for index, (count, mixture) in enumerate(segments):
        if index == cut:
            state = json.loads(json.dumps(stream.state()))
        stream.set_mixture(MIXTURES[mixture])  # the step boundary where the controller swaps
        ids = [i.id for i in stream.next_batch(count)]
        if index >= cut:
            after.extend(ids)
    return state, after


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, len(MIXTURES) - 1)), min_size=1, max_size=8),
       st.integers(0, 7), st.booleans())
def test_save_restore_continue_gives_the_identical_sequence(segments, cut, rebuild) -> None:
    cut = min(cut, len(segments) - 1)
    state, expected = reference_run(tuple(segments), cut)
    if rebuild:  # a new process: everything from the saved state, the mixture included
        resumed = MixtureStream.from_state(pools(), state)
    else:  # the daemon's way: a stream on the first plan step's mixture, then restore
        resumed = MixtureStream(pools(), MIXTURES[1], seed=9)
        resumed.restore(state)
    replayed: list[str] = []
    for count, mixture in segments[cut:]:
        resumed.set_mixture(MIXTURES[mixture])
        replayed.extend(i.id for i in resumed.next_batch(count))
    assert replayed == expected


def test_state_is_small_json_and_carries_the_mixture() -> None:
    stream = MixtureStream(pools(), MIXTURES[2], seed=0)
    stream.next_batch(5000)
    text = json.dumps(stream.state())
    assert len(text) < 2000
    rebuilt = MixtureStream.from_state(pools(), json.loads(text))
    assert rebuilt.mixture == MIXTURES[2]
    assert [i.id for i in rebuilt.next_batch(300)] == [i.id for i in stream.next_batch(300)]


def test_weights_that_cannot_be_met_and_bad_states_are_clear_errors() -> None:
    with pytest.raises(DataError, match=r"weight 0\.0 cannot be met"):
        MixtureStream(pools(), Mixture((MixtureComponent("qa", 0.0), MixtureComponent("a", 1.0))), seed=0)
    with pytest.raises(DataError, match=r"weight nan cannot be met"):
        MixtureStream(pools(), Mixture((MixtureComponent("qa", float("nan")),)), seed=0)
    with pytest.raises(DataError, match=r"no loaded pool for mixture component 'code\|"):
        MixtureStream(pools(), Mixture((MixtureComponent("code", 1.0),)), seed=0)
    with pytest.raises(DataError, match="its pool is empty"):
        MixtureStream({pool_key(GSM_WHOLE): []}, MIXTURES[1], seed=0)
    with pytest.raises(DataError, match="at least one component"):
        MixtureStream(pools(), Mixture(()), seed=0)
    stream = MixtureStream(pools(), MIXTURES[1], seed=0)
    with pytest.raises(DataError, match="saved with seed 0, this run uses 1"):
        MixtureStream(pools(), MIXTURES[1], seed=1).restore(stream.state())
    with pytest.raises(DataError, match="stream state: missing rng"):
        stream.restore({k: v for k, v in stream.state().items() if k != "rng"})
    with pytest.raises(DataError, match="stream state: malformed"):
        stream.restore({**stream.state(), "cursors": {"x": "no"}})


def test_tunix_batch_is_numpy_string_arrays() -> None:
    items = MixtureStream(pools(), MIXTURES[2], seed=0).next_batch(4)
    batch = to_tunix_batch(items)
    assert set(batch) == {"prompts", "answer", "domain", "grading", "id"}
    for key, field in (("prompts", "prompt"), ("answer", "answer"), ("domain", "domain"), ("grading", "grading"),
                       ("id", "id")):
        assert isinstance(batch[key], np.ndarray) and batch[key].dtype.kind == "U"
        assert batch[key].tolist() == [getattr(i, field) for i in items]
