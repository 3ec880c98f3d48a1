"""The per-step roll-up: every metric from hand-built records, Tunix's GRPO advantage, the columnar batch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autocurriculum.observation import (
    STEP_METRICS,
    CompletionRecord,
    RecordBatch,
    StepObservation,
    grpo_advantages,
    summarize,
)


def record(
    *, domain: str = "math", ok: bool = True, extracted: bool = True, refused: bool = False, length: int = 10,
    rambling: bool = False, correct: bool | None = True, hallucination: bool = False, empty: bool = False,
    text: str = "", rewards: dict[str, float] | None = None,
) -> CompletionRecord:
    return CompletionRecord(domain, ok, extracted, refused, length, rambling, correct, hallucination, empty,
                            hash(text or repr((domain, ok, extracted, refused, length, correct))),
                            {"r": 0.0} if rewards is None else rewards)


def test_rates_and_lengths_over_one_step() -> None:
    records = [
        record(length=10, text="a", rewards={"gate": 0.5, "answer": 1.0}),
        record(length=30, correct=False, text="b", rewards={"gate": 0.5, "answer": 0.0}),
        record(ok=False, extracted=False, refused=True, length=6, correct=False, text="c",
               rewards={"gate": -1.0, "answer": 0.0}),
        record(ok=False, length=50, rambling=True, correct=True, text="c", rewards={"gate": -1.0, "answer": 0.0}),
    ]
    obs = summarize(7, records, group_size=2)
    m = obs.metrics
    assert (obs.step, obs.completions) == (7, 4)
    assert m["extraction_rate"] == 3 / 4 and m["strict_compliance"] == 2 / 4 and m["refusal_rate"] == 1 / 4
    assert m["mean_length_tokens"] == (10 + 30 + 6 + 50) / 4
    assert m["rambling_rate"] == 1 / 4 and m["empty_completion_rate"] == 0.0
    assert m["distinct_completion_ratio"] == 3 / 4  # two records share a text
    assert m["accuracy"] == 1 / 4  # correct AND inside the contract: the rambling right answer does not count
    assert m["wrong_answer_length_tokens"] == 30  # extracted and wrong: only record b
    assert m["reward_mean"] == (1.5 + 0.5 - 1.0 - 1.0) / 4
    assert obs.reward_means == {"gate": (0.5 + 0.5 - 1.0 - 1.0) / 4, "answer": 1.0 / 4}
    assert m["domain_compliance:math"] == 2 / 4 and m["domain_accuracy:math"] == 1 / 4
    assert obs.domain_counts == {"math": 4}
    assert set(STEP_METRICS) <= set(m)


def test_metrics_that_cannot_be_computed_are_absent() -> None:
    ungraded = summarize(1, [record(correct=None), record(correct=None)], group_size=2)
    assert "accuracy" not in ungraded.metrics and "hallucination_rate" not in ungraded.metrics
    assert "wrong_answer_length_tokens" not in ungraded.metrics and "domain_accuracy:math" not in ungraded.metrics
    assert "learnable_group_ratio" not in summarize(1, [record()] * 3, group_size=2).metrics  # no whole groups
    assert "mean_abs_advantage" not in summarize(1, [record()] * 3, group_size=1).metrics
    empty = summarize(3, [], group_size=4)
    assert (empty.completions, dict(empty.metrics), empty.nonfinite) == (0, {}, 0)


def test_hallucination_rate_is_over_graded_completions() -> None:
    records = [record(correct=False, hallucination=True), record(correct=False), record(correct=True),
               record(correct=None, hallucination=True)]
    assert summarize(1, records, group_size=1).metrics["hallucination_rate"] == 1 / 3


def test_per_domain_compliance_accuracy_and_counts() -> None:
    records = [record(domain="math"), record(domain="code", ok=False, correct=True), record(domain="code"),
               record(domain="qa", correct=None)]
    obs = summarize(1, records, group_size=1)
    assert obs.domain_counts == {"math": 1, "code": 2, "qa": 1}
    assert obs.metrics["domain_compliance:code"] == 1 / 2 and obs.metrics["domain_accuracy:code"] == 1 / 2
    assert obs.metrics["domain_compliance:math"] == 1.0 and obs.metrics["domain_accuracy:math"] == 1.0
    assert obs.metrics["domain_compliance:qa"] == 1.0 and "domain_accuracy:qa" not in obs.metrics


def test_non_finite_rewards_are_counted_and_dropped() -> None:
    records = [record(rewards={"a": math.nan, "b": 1.0}), record(rewards={"a": 2.0, "b": math.inf})]
    obs = summarize(1, records, group_size=2)
    assert obs.nonfinite == 2
    assert obs.reward_means == {"a": 2.0, "b": 1.0}
    assert obs.metrics["reward_mean"] == (1.0 + 2.0) / 2
    assert all(math.isfinite(v) for v in obs.metrics.values())


def test_records_scored_by_different_sets_still_roll_up() -> None:
    records = [record(rewards={"a": 1.0}), record(rewards={"a": 0.0, "b": -1.0})]
    obs = summarize(1, records, group_size=2)
    assert obs.reward_means == {"a": 0.5, "b": -1.0}
    assert obs.metrics["reward_mean"] == (1.0 - 1.0) / 2
    joined = RecordBatch.concat([RecordBatch.from_records(records[:1]), RecordBatch.from_records(records[1:])])
    assert list(joined) == records  # the reward the first set lacks stays absent, not zero or NaN
    assert summarize(1, joined, group_size=2) == obs


# ---------------------------------------------------------------- the columnar batch

RECORDS = st.lists(st.builds(
    CompletionRecord, st.sampled_from(["math", "code", "qa"]), st.booleans(), st.booleans(), st.booleans(),
    st.integers(0, 500), st.booleans(), st.none() | st.booleans(), st.booleans(), st.booleans(), st.integers(0, 3),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), st.floats(-2, 2) | st.sampled_from([math.nan, math.inf]),
                    max_size=3)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(RECORDS, st.integers(0, 12))
def test_a_record_batch_holds_exactly_its_records(records: list[CompletionRecord], cut: int) -> None:
    batch = RecordBatch.from_records(records)
    assert list(batch) == records and len(batch) == len(records)
    assert batch[1:3] == records[1:3]
    joined = RecordBatch.concat([RecordBatch.from_records(records[:cut]), RecordBatch.from_records(records[cut:])])
    assert list(joined) == records


@settings(max_examples=200, deadline=None)
@given(RECORDS)
def test_the_roll_up_of_columns_is_the_roll_up_of_the_records(records: list[CompletionRecord]) -> None:
    """Against a one-record-at-a-time reference: every count the columns give equals the plain loop's."""
    obs = summarize(2, records, group_size=2)
    n = len(records)
    assert obs.completions == n
    if not n:
        return
    graded = [r for r in records if r.correct is not None]
    assert obs.metrics["strict_compliance"] == sum(r.contract_ok for r in records) / n
    assert obs.metrics["distinct_completion_ratio"] == len({r.text_hash for r in records}) / n
    if graded:
        assert obs.metrics["accuracy"] == sum(r.contract_ok and r.correct is True for r in graded) / len(graded)
    totals = [r.total_reward for r in records]
    assert obs.metrics["reward_mean"] == pytest.approx(sum(totals) / n)
    assert obs.nonfinite == sum(not math.isfinite(v) for r in records for v in r.rewards.values())


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        RecordBatch(["math"], [True], [True], [False], [3], [False], [True], [False], [False], [1], {"a": []})


# ---------------------------------------------------------------- learnability


def test_learnability_of_a_flat_group_and_a_split_group() -> None:
    rewards = [1.0, 1.0, 1.0, 0.0]  # group one all equal, group two split
    obs = summarize(1, [record(rewards={"r": r}) for r in rewards], group_size=2)
    assert obs.metrics["learnable_group_ratio"] == 0.5
    # Two rewards a != b: mean (a+b)/2, sample std |a-b|/sqrt(2), so each |advantage| is 1/sqrt(2).
    assert obs.metrics["mean_abs_advantage"] == pytest.approx((0 + 0 + 2 / math.sqrt(2)) / 4, rel=1e-5)


def tunix_grpo_reference(rewards: list[float], group: int) -> np.ndarray:
    """tunix/rl/algo_core.py compute_advantages, restated with numpy (the test must not import jax)."""
    array = np.asarray(rewards, dtype=np.float64)
    means = array.reshape(-1, group).mean(axis=-1).repeat(group)
    stds = array.reshape(-1, group).std(axis=-1, ddof=1).repeat(group)
    return (array - means) / (stds + 1e-6)


REWARD = st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5]) | st.floats(-3, 3, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 6).flatmap(lambda g: st.tuples(st.just(g), st.lists(st.lists(REWARD, min_size=g, max_size=g),
                                                                            min_size=1, max_size=8))))
def test_advantages_and_learnability_match_tunix_grpo(case: tuple[int, list[list[float]]]) -> None:
    group, groups = case
    rewards = [r for g in groups for r in g]
    assert grpo_advantages(rewards, group) == pytest.approx(list(tunix_grpo_reference(rewards, group)), abs=1e-6)
    obs = summarize(1, [record(rewards={"r": r}) for r in rewards], group_size=group)
    distinct = [max(g) - min(g) > 1e-9 for g in groups]
    assert obs.metrics["learnable_group_ratio"] == sum(distinct) / len(groups)
    expected = np.abs(tunix_grpo_reference(rewards, group)).reshape(-1, group)[np.array(distinct)].sum() / len(rewards)
    assert obs.metrics["mean_abs_advantage"] == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_grpo_advantages_rejects_groups_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="groups of 4"):
        grpo_advantages([1.0, 2.0, 3.0], 4)


# ---------------------------------------------------------------- the JSON form

def test_observation_survives_json() -> None:
    obs = summarize(4, [record(rewards={"r": 1.0}), record(correct=False, rewards={"r": 0.0})], group_size=2)
    assert StepObservation.from_json(obs.to_json()) == obs
