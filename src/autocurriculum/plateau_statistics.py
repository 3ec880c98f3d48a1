"""The statistics of the plateau tests: each a pure function of a window's values (numpy only).

Why apart from plateau.py: that module owns the rolling window and the choice of test per policy entry;
these are the definitions it computes (patience, OLS trend reach, Mann-Kendall and its Hamed-Rao
variance correction for autocorrelated steps, the slope equivalence test with an AR(1) HAC error, the
coefficient of variation). plateau.py's docstring says what each test decides and why; tests and
benchmarks call these directly on a sequence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from statistics import NormalDist

import numpy as np


def frozen(array: np.ndarray) -> np.ndarray:
    """`array`, made read-only: windows and cached bases are shared, never mutated."""
    array.flags.writeable = False
    return array


def running_sums(values: np.ndarray) -> tuple[float, float, float]:
    """(sum, sum of squares, sum of position x value), exactly rounded: the OLS trend's inputs."""
    positions = np.arange(len(values), dtype=np.float64)
    return math.fsum(values.tolist()), math.fsum((values * values).tolist()), math.fsum((positions * values).tolist())


@lru_cache(maxsize=64)
def critical_z(alpha: float) -> float:
    """Two-sided normal critical value for significance alpha."""
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


# ---------------------------------------------------------------- reference tests on a sequence
# Each returns (statistic, plateaued). They are the definitions; `run_test` computes the same
# statistics from a window's running sums when the test covers the whole window.


def patience_statistic(values: Sequence[float] | np.ndarray, patience: int) -> float:
    """How far the last `patience` values went beyond the extremes of the values before them.

    The largest of (newest max - earlier max) and (earlier min - newest min), so a rise and a fall
    both count as improvement; NaN when there is nothing earlier to compare with.
    """
    y = np.asarray(values, dtype=np.float64)
    if len(y) <= patience or patience < 1:
        return math.nan
    earlier, recent = y[:-patience], y[-patience:]
    return float(max(recent.max() - earlier.max(), earlier.min() - recent.min()))


def patience_test(values: Sequence[float], patience: int, min_delta: float) -> tuple[float, bool]:
    statistic = patience_statistic(values, patience)
    return statistic, bool(statistic <= min_delta)


def trend_reach(n: int, total: float, total_sq: float, total_xy: float, alpha: float) -> float:
    """max |end of the (1 - alpha) slope CI| x n, from the sums of y, y^2 and t*y (t = 0..n-1)."""
    if n < 3:
        return math.nan
    sxx = n * (n * n - 1) / 12.0
    mean = total / n
    sxy = total_xy - (n - 1) / 2.0 * total
    syy = max(total_sq - total * mean, 0.0)
    slope = sxy / sxx
    residual = max(syy - slope * sxy, 0.0)
    se = math.sqrt(residual / (n - 2) / sxx)
    return (abs(slope) + critical_z(alpha) * se) * n


def trend_test(values: Sequence[float], epsilon: float, alpha: float) -> tuple[float, bool]:
    """Equivalence: the slope's confidence interval x window lies inside +/- epsilon."""
    y = np.asarray(values, dtype=np.float64)
    reach = trend_reach(len(y), *running_sums(y), alpha)
    return reach, bool(reach <= epsilon)


def mann_kendall_s(values: Sequence[float] | np.ndarray) -> int:
    y = np.asarray(values, dtype=np.float64)
    return int(np.sign(y[None, :] - y[:, None])[np.triu_indices(len(y), 1)].sum())


def mann_kendall_z(n: int, s: int, values: Sequence[float] | np.ndarray) -> float:
    """|z| of S under the tie-corrected normal approximation, with continuity correction."""
    if n < 4:
        return math.nan
    _, ties = np.unique(np.asarray(values, dtype=np.float64), return_counts=True)
    ties = ties.astype(np.float64)
    variance = (n * (n - 1) * (2 * n + 5) - float(np.sum(ties * (ties - 1) * (2 * ties + 5)))) / 18.0
    if variance <= 0.0 or s == 0:  # every value equal, or no net trend
        return 0.0
    return abs((abs(s) - 1) / math.sqrt(variance))


def mann_kendall_test(values: Sequence[float], alpha: float) -> tuple[float, bool]:
    """No monotonic trend: |z| below the two-sided critical value at alpha."""
    z = mann_kendall_z(len(values), mann_kendall_s(values), values)
    return z, bool(z < critical_z(alpha))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank (one sort)."""
    n = len(values)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_group = np.empty(n, dtype=bool)
    starts_group[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_group[1:])
    starts = np.flatnonzero(starts_group)
    counts = np.diff(np.append(starts, n))
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(starts + (counts + 1) / 2.0, counts)
    return ranks


def autocorrelations(values: np.ndarray) -> np.ndarray:
    """Sample autocorrelation at lags 1..n-1 (biased estimator, as in Hamed & Rao), via one FFT."""
    n = len(values)
    spectrum = np.fft.rfft(values - values.mean(), 1 << (2 * n - 1).bit_length())
    covariance = np.fft.irfft(spectrum.real ** 2 + spectrum.imag ** 2)[:n]
    if covariance[0] <= 0.0:
        return np.zeros(n - 1)
    correlations: np.ndarray = covariance[1:] / covariance[0]
    return correlations


@lru_cache(maxsize=16)
def _hamed_rao_basis(n: int) -> tuple[np.ndarray, float, np.ndarray]:
    """Per window length: centred positions, their sum of squares, and each lag's weight in n / n*."""
    t = np.arange(n, dtype=np.float64)
    t -= t.mean()
    k = np.arange(1, n, dtype=np.float64)
    weights = 2.0 * (n - k) * (n - k - 1) * (n - k - 2) / (n * (n - 1) * (n - 2))
    return frozen(t), float(t @ t), frozen(weights)


def hamed_rao_factor(values: Sequence[float] | np.ndarray, alpha: float) -> float:
    """n / n*: how much autocorrelation inflates the variance of Mann-Kendall's S (Hamed & Rao 1998).

    The series is detrended (by its OLS slope: O(n), where Sen's slope would cost O(n^2) pairs at
    window 1,000), ranked, and the rank autocorrelations r_k significant at alpha enter
    1 + 2 / (n (n-1) (n-2)) * sum_k (n-k)(n-k-1)(n-k-2) r_k. The factor is floored at 1: in a
    window of tens of steps a negative lag correlation is mostly estimation noise, and letting it
    shrink the variance would make plain Mann-Kendall's error worse, not better.
    """
    y = np.asarray(values, dtype=np.float64)
    n = len(y)
    if n < 4:
        return 1.0
    t, sxx, weights = _hamed_rao_basis(n)
    r = autocorrelations(average_ranks(y - float(t @ y) / sxx * t))
    significant = np.where(np.abs(r) > critical_z(alpha) / math.sqrt(n), r, 0.0)
    return max(1.0 + float(weights @ significant), 1.0)


def mann_kendall_hr_z(n: int, s: int, values: Sequence[float] | np.ndarray, alpha: float) -> float:
    """|z| of S with the tie-corrected variance times the Hamed-Rao factor, continuity corrected."""
    z = mann_kendall_z(n, s, values)
    if not math.isfinite(z) or z == 0.0:
        return z
    return z / math.sqrt(hamed_rao_factor(values, alpha))


def mann_kendall_hr_test(values: Sequence[float] | np.ndarray, alpha: float) -> tuple[float, bool]:
    """No monotonic trend once autocorrelation is allowed for: |z| below the critical value at alpha."""
    z = mann_kendall_hr_z(len(values), mann_kendall_s(values), values, alpha)
    return z, bool(z < critical_z(alpha))


def _lag_one(series: np.ndarray) -> float:
    denominator = float(series @ series)
    return float(series[1:] @ series[:-1]) / denominator if denominator > 0.0 else 0.0


def hac_slope(values: Sequence[float] | np.ndarray, alpha: float) -> tuple[float, float]:
    """OLS slope per step and an autocorrelation-robust standard error (AR(1) long-run variance).

    The slope's variance under AR(1) errors is the OLS variance times (1 + rho) / (1 - rho) (the
    parametric, VARHAC-style HAC estimate of Den Haan & Levin). rho is the residuals' lag-one
    autocorrelation, corrected for its small-sample bias (+ (1 + 3 rho) / n) and then taken at its
    upper (1 - alpha) confidence bound (+ z sqrt((1 - rho^2) / n)), floored at 0 and capped at 0.97.
    Why the bound: on a window of tens of steps rho is underestimated often enough that a point
    estimate (or a Newey-West estimate, plain or prewhitened, tried first) let the equivalence test
    pass more than alpha of the series that still rise by the whole band; with the bound it stays
    within alpha (tests/test_plateau.py measures it on AR(1) noise up to phi = 0.8).
    """
    y = np.asarray(values, dtype=np.float64)
    n = len(y)
    if n < 4:
        return math.nan, math.nan
    t = np.arange(n, dtype=np.float64)
    t -= t.mean()
    sxx = float(t @ t)
    slope = float(t @ y) / sxx
    residuals = y - y.mean() - slope * t
    rho = _lag_one(residuals)
    rho += (1.0 + 3.0 * rho) / n
    rho += NormalDist().inv_cdf(1.0 - alpha) * math.sqrt(max(1.0 - rho * rho, 0.0) / n)
    rho = min(max(rho, 0.0), 0.97)
    variance = float(residuals @ residuals) / (n - 2) / sxx * (1.0 + rho) / (1.0 - rho)
    return slope, math.sqrt(variance)


def slope_tost_reach(values: Sequence[float] | np.ndarray, alpha: float) -> float:
    """(|slope| + z_(1-alpha) * HAC standard error) x n: the largest change over the window that the
    two one-sided tests at level alpha cannot exclude."""
    slope, se = hac_slope(values, alpha)
    if not math.isfinite(se):
        return math.nan
    return (abs(slope) + NormalDist().inv_cdf(1.0 - alpha) * se) * len(values)


def slope_tost_test(values: Sequence[float] | np.ndarray, epsilon: float, alpha: float) -> tuple[float, bool]:
    """Equivalence (TOST): both 'slope x window >= epsilon' and '<= -epsilon' rejected at alpha."""
    reach = slope_tost_reach(values, alpha)
    return reach, bool(reach < epsilon)


def coefficient_of_variation(n: int, total: float, total_sq: float) -> float:
    """Population standard deviation / mean; infinite for a non-positive mean (never stable)."""
    if n < 2:
        return math.nan
    mean = total / n
    if mean <= 0.0:
        return math.inf
    return math.sqrt(max(total_sq / n - mean * mean, 0.0)) / mean


def stable_level_test(values: Sequence[float] | np.ndarray, max_cv: float) -> tuple[float, bool]:
    y = np.asarray(values, dtype=np.float64)
    cv = coefficient_of_variation(len(y), math.fsum(y.tolist()), math.fsum((y * y).tolist()))
    return cv, bool(cv <= max_cv)


# ---------------------------------------------------------------- the policy's view
