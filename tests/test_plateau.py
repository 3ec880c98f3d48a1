"""Plateau tests: the window's running statistics against their definitions, and each test on
hand-built series whose verdict follows from the definition (rising is not a plateau, flat noise
is, a window that is not full never is, NaN never counts)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autocurriculum.plateau import Window, run_test, values_needed
from autocurriculum.plateau_statistics import (
    critical_z,
    hac_slope,
    hamed_rao_factor,
    mann_kendall_hr_test,
    mann_kendall_s,
    mann_kendall_test,
    mann_kendall_z,
    patience_test,
    slope_tost_test,
    stable_level_test,
    trend_test,
)
from autocurriculum.policy import PlateauSpec, PlateauTest

finite = st.floats(min_value=-100, max_value=100, allow_nan=False, allow_infinity=False)
values_and_junk = st.lists(st.one_of(finite, finite, finite, st.sampled_from([math.nan, math.inf, -math.inf, None])),
                           max_size=60)


def spec(test: PlateauTest, metric: str = "extraction_rate", window: int = 10, **kw: float) -> PlateauSpec:
    return PlateauSpec(metric=metric, test=test, window=window, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the window


def test_window_keeps_the_newest_values_in_order_and_counts_what_it_drops() -> None:
    window = Window.of(3, [1.0, math.nan, 2.0, math.inf, 3.0, 4.0, None, -math.inf, 5.0])
    assert window.values().tolist() == [3.0, 4.0, 5.0]
    assert window.dropped == 4
    assert window.mean() == 4.0
    assert window.last(2).tolist() == [4.0, 5.0]


def test_a_push_leaves_the_old_window_untouched() -> None:
    before = Window.of(3, [1.0, 2.0, 3.0])
    after = before.push(9.0)
    assert before.values().tolist() == [1.0, 2.0, 3.0]
    assert after.values().tolist() == [2.0, 3.0, 9.0]
    with pytest.raises(ValueError):
        before.ring[0] = 5.0  # read-only: the state is immutable


def test_window_mean_is_exact_at_a_threshold() -> None:
    # summed naively, ten 0.95s average 0.9499999999999998 and a ">= 0.95" criterion would fail
    assert Window.of(10, [0.95] * 10).mean() == 0.95


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=12), values_and_junk)
def test_running_statistics_match_their_definitions(size: int, raw: list[float | None]) -> None:
    window = Window.of(size, raw)
    kept = [v for v in raw if v is not None and math.isfinite(v)][-size:]
    assert window.values().tolist() == kept
    assert window.dropped == sum(1 for v in raw if v is None or not math.isfinite(v))
    assert window.mk_s == mann_kendall_s(kept)
    assert window.total == pytest.approx(math.fsum(kept), abs=1e-9)
    assert window.total_sq == pytest.approx(math.fsum(v * v for v in kept), rel=1e-9, abs=1e-7)
    assert window.total_xy == pytest.approx(math.fsum(i * v for i, v in enumerate(kept)), rel=1e-9, abs=1e-7)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=8), values_and_junk, finite)
def test_a_window_survives_json_exactly(size: int, raw: list[float | None], more: float) -> None:
    import json

    window = Window.of(size, raw)
    restored = Window.from_json(json.loads(json.dumps(window.to_json())))
    assert restored == window
    assert restored.push(more) == window.push(more)


def test_windows_with_other_values_are_not_equal() -> None:
    assert Window.of(3, [1.0, 2.0]) != Window.of(3, [2.0, 1.0])
    assert Window.of(3, [1.0, 2.0]) != Window.of(4, [1.0, 2.0])


# ---------------------------------------------------------------- each test's definition


def test_patience_sees_a_late_rise_or_fall_and_accepts_no_change() -> None:
    flat_after_rise = [0.1, 0.3, 0.5, 0.5, 0.5, 0.5]
    assert patience_test(flat_after_rise, patience=3, min_delta=0.01) == (0.0, True)
    still_rising = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    statistic, plateaued = patience_test(still_rising, patience=3, min_delta=0.01)
    assert statistic == pytest.approx(0.6 - 0.3) and not plateaued
    falling = [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    assert patience_test(falling, patience=3, min_delta=0.01)[1] is False


def test_trend_reach_of_an_exact_line_is_its_slope_times_the_window() -> None:
    line = [0.5 + 0.01 * i for i in range(10)]  # no residual: the interval is the slope itself
    reach, plateaued = trend_test(line, epsilon=0.2, alpha=0.05)
    assert reach == pytest.approx(0.01 * 10)
    assert plateaued
    assert trend_test(line, epsilon=0.05, alpha=0.05)[1] is False


def test_trend_rejects_a_noisy_rise_and_accepts_flat_noise() -> None:
    rng = np.random.default_rng(0)
    rising = np.linspace(0.3, 0.9, 20) + rng.normal(0, 0.02, 20)
    flat = 0.9 + rng.normal(0, 0.02, 20)
    assert trend_test(rising.tolist(), epsilon=0.05, alpha=0.05)[1] is False
    assert trend_test(flat.tolist(), epsilon=0.05, alpha=0.05)[1] is True


def test_mann_kendall_on_hand_computed_series() -> None:
    # strictly increasing, n = 10: S = 45, var = 10*9*25/18 = 125, z = (45 - 1) / sqrt(125)
    z, plateaued = mann_kendall_test([float(i) for i in range(10)], alpha=0.05)
    assert z == pytest.approx(44 / math.sqrt(125)) and not plateaued
    # ties: [1, 2, 2, 3] has S = 5 and var = (4*3*13 - 2*1*9) / 18
    z, _ = mann_kendall_test([1.0, 2.0, 2.0, 3.0], alpha=0.05)
    assert z == pytest.approx(4 / math.sqrt((156 - 18) / 18))
    assert mann_kendall_test([1.0, 2.0] * 5, alpha=0.05)[1] is True
    assert mann_kendall_test([0.5] * 10, alpha=0.05) == (0.0, True)


def test_stable_level_is_the_population_coefficient_of_variation() -> None:
    cv, plateaued = stable_level_test([20.0, 21.0, 19.0, 20.0], max_cv=0.1)
    assert cv == pytest.approx(math.sqrt(0.5) / 20) and plateaued
    assert stable_level_test([10.0, 30.0, 5.0, 40.0], max_cv=0.1)[1] is False
    assert stable_level_test([0.0, 0.0, 0.0], max_cv=0.1)[1] is False  # no level at all is not a stable one


def test_hamed_rao_leaves_uncorrelated_residuals_alone_and_widens_for_a_wander() -> None:
    line = [float(i) for i in range(12)]  # no residual at all: nothing to correct
    assert hamed_rao_factor(line, 0.05) == 1.0
    assert mann_kendall_hr_test(line, 0.05)[0] == pytest.approx(mann_kendall_z(12, mann_kendall_s(line), line))
    wander = np.sin(np.linspace(0, 3 * math.pi, 60))  # neighbours share their error for ~10 steps
    factor = hamed_rao_factor(wander.tolist(), 0.05)
    assert factor > 2.0
    z_plain = mann_kendall_test(wander.tolist(), 0.05)[0]
    assert mann_kendall_hr_test(wander.tolist(), 0.05)[0] == pytest.approx(z_plain / math.sqrt(factor))


def test_hac_slope_is_the_ols_slope_with_an_ar1_widened_error() -> None:
    y = np.array([0.50, 0.56, 0.55, 0.61, 0.58, 0.66, 0.70, 0.64, 0.72, 0.75])
    n = len(y)
    t = np.arange(n) - (n - 1) / 2
    sxx = float(t @ t)
    slope = float(t @ y) / sxx
    residuals = y - y.mean() - slope * t
    rho = float(residuals[1:] @ residuals[:-1]) / float(residuals @ residuals)
    rho += (1 + 3 * rho) / n
    rho = min(max(rho + 1.6448536 * math.sqrt((1 - rho * rho) / n), 0.0), 0.97)
    ols_se = math.sqrt(float(residuals @ residuals) / (n - 2) / sxx)
    got_slope, got_se = hac_slope(y.tolist(), 0.05)
    assert got_slope == pytest.approx(slope)
    assert got_se == pytest.approx(ols_se * math.sqrt((1 + rho) / (1 - rho)), rel=1e-6)


def test_slope_tost_passes_inside_the_band_and_not_outside() -> None:
    line = [0.5 + 0.01 * i for i in range(10)]  # no residual: the reach is the change over the window
    reach, plateaued = slope_tost_test(line, epsilon=0.2, alpha=0.05)
    assert reach == pytest.approx(0.01 * 10) and plateaued
    assert slope_tost_test(line, epsilon=0.1, alpha=0.05)[1] is False  # a change of exactly the band
    reach, plateaued = slope_tost_test([0.7] * 10, epsilon=0.01, alpha=0.05)
    assert reach == pytest.approx(0.0, abs=1e-12) and plateaued


# ---------------------------------------------------------------- error rates on autocorrelated noise
# 1,000 seeded series each; the bound is the nominal level plus three binomial standard deviations
# of a rate measured on 1,000 series (0.05 + 3 x sqrt(0.05 x 0.95 / 1000) = 0.0707).

SERIES, STEPS, ALPHA = 1000, 40, 0.05
SLACK_BOUND = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / SERIES)


def ar1_noise(phi: float, sd: float, seed: int) -> np.ndarray:
    """SERIES x STEPS of stationary AR(1) noise with standard deviation sd."""
    rng = np.random.default_rng(seed)
    out = np.empty((SERIES, STEPS))
    out[:, 0] = rng.normal(0.0, sd, SERIES)
    for t in range(1, STEPS):
        out[:, t] = phi * out[:, t - 1] + rng.normal(0.0, sd * math.sqrt(1 - phi * phi), SERIES)
    return out


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.8])
def test_slope_tost_calls_at_most_alpha_of_rises_of_one_band_a_plateau(phi: float) -> None:
    """The equivalence test's error: a series still rising by the whole band over its window is
    called a plateau in at most alpha of cases, on AR(1) noise alone and under 16-completion draws."""
    band = 8 * math.sqrt(12 / STEPS) * math.sqrt((1 + phi) / (1 - phi))  # wide enough for the test to pass at all
    rising = band / STEPS * np.arange(STEPS) + ar1_noise(phi, 1.0, seed=1)
    passed = np.mean([slope_tost_test(row.tolist(), band, ALPHA)[1] for row in rising])
    assert passed <= SLACK_BOUND, f"phi {phi}: {passed:.1%} of rises of one band called a plateau"
    rng = np.random.default_rng(2)
    p = np.clip(0.7 + 0.3 / STEPS * (np.arange(STEPS) - STEPS / 2) + ar1_noise(phi, 0.05, seed=3), 0, 1)
    drawn = rng.binomial(16, p) / 16
    passed = np.mean([slope_tost_test(row.tolist(), 0.3, ALPHA)[1] for row in drawn])
    assert passed <= SLACK_BOUND, f"phi {phi}, 16 draws a step: {passed:.1%} of rises of 0.3 called a plateau"


def no_trend_rejected(test, noise: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    return float(np.mean([not test(row.tolist(), ALPHA)[1] for row in noise]))


def test_plain_mann_kendall_sees_trends_in_autocorrelated_noise_and_hamed_rao_fewer() -> None:
    """Mann-Kendall's error is a trend found in trendless noise (a plateau called late). Plain
    Mann-Kendall assumes independent steps: at phi = 0.8 it finds a trend in far more than alpha of
    flat series (50% of these 40-step series). The Hamed-Rao correction removes part of the excess but
    not all of it on windows this short (31% of them): it is not within its level here either."""
    independent = ar1_noise(0.0, 1.0, seed=4)
    assert no_trend_rejected(mann_kendall_test, independent) <= SLACK_BOUND
    assert no_trend_rejected(mann_kendall_hr_test, independent) <= SLACK_BOUND
    correlated = ar1_noise(0.8, 1.0, seed=5)
    plain = no_trend_rejected(mann_kendall_test, correlated)
    corrected = no_trend_rejected(mann_kendall_hr_test, correlated)
    assert plain > SLACK_BOUND  # documents the failure the correction is for
    assert corrected < plain - 0.1


# ---------------------------------------------------------------- run_test: the policy's view


def test_a_window_that_is_not_full_is_never_a_plateau() -> None:
    for test in PlateauTest:
        s = spec(test, metric="learnable_group_ratio" if test is PlateauTest.LEARNING_EXHAUSTED else "extraction_rate")
        result = run_test(s, Window.of(values_needed(s), [0.0] * (values_needed(s) - 1)), 16, True)
        assert not result.ready and not result.plateaued, test


def test_nan_never_fills_a_window() -> None:
    result = run_test(spec(PlateauTest.TREND), Window.of(10, [0.9] * 5 + [math.nan] * 20), 16, True)
    assert not result.ready and not result.plateaued


def test_trend_band_is_floored_by_one_steps_binomial_noise_for_rates_only() -> None:
    # p = 0.5 with 16 completions a step: one step's standard error is sqrt(0.25 / 16) = 0.125
    result = run_test(spec(PlateauTest.TREND, epsilon=0.01, noise_multiplier=2.0), Window.of(10, [0.5] * 10), 16, True)
    assert result.bound == pytest.approx(2.0 * 0.125)
    assert result.plateaued
    length = run_test(spec(PlateauTest.TREND, metric="mean_length_tokens", epsilon=0.01), Window.of(10, [20.0] * 10),
                      16, False)
    assert length.bound == 0.01


def test_learning_exhausted_reads_the_learnable_group_share() -> None:
    s = spec(PlateauTest.LEARNING_EXHAUSTED, metric="learnable_group_ratio", min_learnable=0.1)
    exhausted = run_test(s, Window.of(10, [0.0, 0.1] * 5), 16, True)
    assert exhausted.statistic == pytest.approx(0.05) and exhausted.plateaued
    assert not run_test(s, Window.of(10, [0.5] * 10), 16, True).plateaued


def test_patience_compares_its_last_steps_with_as_many_before_them() -> None:
    s = spec(PlateauTest.PATIENCE, window=5, patience=8)
    assert values_needed(s) == 16
    assert not run_test(s, Window.of(20, [0.5] * 15), 16, True).ready
    assert run_test(s, Window.of(20, [0.5] * 16), 16, True).plateaued
    # a new high 9 steps ago is outside the tested segment; 8 steps ago it is inside
    assert run_test(s, Window.of(16, [0.5] * 7 + [0.9] + [0.5] * 8), 16, True).plateaued
    assert not run_test(s, Window.of(16, [0.5] * 8 + [0.9] + [0.5] * 7), 16, True).plateaued


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=12, max_size=40), st.sampled_from(list(PlateauTest)))
def test_the_running_path_and_the_direct_path_agree(values: list[float], test: PlateauTest) -> None:
    s = spec(test, window=12, patience=4, epsilon=0.05, max_cv=0.3)
    whole = run_test(s, Window.of(12, values), 16, True)  # the window is exactly the test's: running sums
    part = run_test(s, Window.of(40, values), 16, True)  # a longer window: the test reads its last 12 values
    assert whole.ready and part.ready
    assert whole.statistic == pytest.approx(part.statistic, rel=1e-6, abs=1e-6)
    margin = abs(whole.statistic - whole.bound)
    if margin > 1e-6:  # away from the boundary, the verdicts agree
        assert whole.plateaued == part.plateaued


def test_results_serialise_without_infinities() -> None:
    result = run_test(spec(PlateauTest.STABLE_LEVEL), Window.of(10, [0.0] * 10), 16, True)
    assert result.to_json()["statistic"] is None and result.to_json()["plateaued"] is False
    assert critical_z(0.05) == pytest.approx(1.959964, abs=1e-6)
