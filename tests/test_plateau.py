"""Plateau tests on hand-built windows: rising is not a plateau, flat noise is, NaN never counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autocurriculum.plateau import Window, mann_kendall_test, patience_test, run_test, stable_level_test, trend_test
from autocurriculum.policy import PlateauSpec, PlateauTest


def test_window_keeps_the_last_values_and_drops_nonfinite() -> None:
    window = Window(3)
    for value in (1.0, float("nan"), 2.0, float("inf"), 3.0, 4.0, None):
        window = window.push(value)
    assert window.values == (2.0, 3.0, 4.0)
    assert window.dropped == 3
    assert window.mean() == 3.0


def test_patience_counts_steps_since_the_best() -> None:
    assert patience_test([0.1, 0.5, 0.5, 0.5, 0.5], patience=3, min_delta=0.01) == (3.0, True, True)
    assert patience_test([0.1, 0.2, 0.3, 0.4, 0.5], patience=3, min_delta=0.01)[1] is False
    assert patience_test([0.1, 0.2], patience=3, min_delta=0.01)[2] is False


def test_trend_rejects_a_rise_and_accepts_a_flat_noisy_level() -> None:
    rng = np.random.default_rng(0)
    rising = list(np.linspace(0.3, 0.9, 20) + rng.normal(0, 0.02, 20))
    flat = list(0.9 + rng.normal(0, 0.02, 20))
    assert trend_test(rising, epsilon=0.05, alpha=0.05)[1] is False
    assert trend_test(flat, epsilon=0.05, alpha=0.05)[1] is True


def test_mann_kendall_detects_a_monotonic_trend_only() -> None:
    assert mann_kendall_test(list(range(20)), alpha=0.05)[1] is False
    assert mann_kendall_test([1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0], alpha=0.05)[1] is True
    assert mann_kendall_test([0.5] * 10, alpha=0.05) == (0.0, True, True)


def test_stable_level_uses_the_coefficient_of_variation() -> None:
    assert stable_level_test([20, 21, 19, 20], max_cv=0.1)[1] is True
    assert stable_level_test([10, 30, 5, 40], max_cv=0.1)[1] is False


def spec(test: PlateauTest, metric: str = "extraction_rate", **kw) -> PlateauSpec:
    return PlateauSpec(metric=metric, test=test, window=10, **kw)


def window_of(values) -> Window:
    window = Window(10)
    for value in values:
        window = window.push(value)
    return window


def test_a_window_that_is_not_full_is_never_a_plateau() -> None:
    result = run_test(spec(PlateauTest.TREND), window_of([0.9] * 5), 16, True)
    assert not result.ready and not result.plateaued


def test_trend_epsilon_is_floored_by_binomial_noise_for_rates() -> None:
    # p = 0.5 with 16 completions a step: one step's standard error is 0.125
    result = run_test(spec(PlateauTest.TREND, epsilon=0.01), window_of([0.5] * 10), 16, True)
    assert result.bound == pytest.approx(0.125)
    length = run_test(spec(PlateauTest.TREND, metric="mean_length_tokens", epsilon=0.01), window_of([20.0] * 10), 16, False)
    assert length.bound == 0.01


def test_learning_exhausted_reads_the_learnable_group_share() -> None:
    s = spec(PlateauTest.LEARNING_EXHAUSTED, metric="learnable_group_ratio", min_learnable=0.1)
    assert run_test(s, window_of([0.0] * 10), 16, True).plateaued
    assert not run_test(s, window_of([0.5] * 10), 16, True).plateaued


def test_results_are_finite_for_the_log() -> None:
    result = run_test(spec(PlateauTest.STABLE_LEVEL), window_of([0.0] * 10), 16, True)
    assert math.isfinite(result.statistic)
