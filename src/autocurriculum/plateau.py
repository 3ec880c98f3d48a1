"""Rolling windows and plateau tests: pure state + pure update, numpy only.

Why this module exists: the controller may only advance when the watched behaviour has stopped
changing, and GRPO statistics are noisy. With 16 completions a step one step's rate has a standard
deviation of ~10 points, and a tiny model's compliance wanders between 82% and 100% (docs/design.md,
"Plateaus and noise"). A
plateau test must not read that wander as progress, nor a slow rise as a plateau.

Style (as optax's reduce-on-plateau): the state is an immutable `Window`, `window.push(value)`
returns the next one, and every test is a pure function of a window. A push costs O(1) arithmetic
on running sums (sum, sum of squares, sum of position x value) plus one vectorised O(window) pass
that keeps the Mann-Kendall S statistic current, so no test ever needs the O(window^2) pair loop;
the ring buffer is copied on push (O(window) memory, ~1 us at window 1,000). Running float sums are
recomputed exactly every `size` pushes, so rounding drift stays bounded.

The tests, selectable per metric in the policy (policy.PlateauTest); benchmarks/plateau.py measures
each one's false plateaus and delay on simulated and recorded GRPO curves. The statistics are
hand-written on numpy (no scipy or pymannkendall): each is a few lines, and they must run on the
controller's running window in well under a millisecond.
- patience: no value in the last `patience` steps moved beyond the extremes of the steps before
  them (at least `patience` of them) by more than min_delta, in either direction. This is Keras
  ReduceLROnPlateau's rule made two-sided and windowed: with 16 completions a step, Keras's
  whole-run best is soon a lucky 1.0 that nothing beats, so its verdict says little (see
  benchmarks/plateau.py), while a reference segment as long as the tested one is beaten about half
  the time on a true plateau and almost always during a rise;
- trend: the confidence interval of the OLS slope, times the window length (the change the trend
  predicts over one window), lies inside +/- epsilon; for rates epsilon is floored by
  noise_multiplier * sqrt(p(1-p)/n), the binomial standard error of one step's rate with n
  completions, so the test is as strict as the noise allows and never stricter;
- mann_kendall: no monotonic trend at significance alpha (normal approximation, tie-corrected
  variance, continuity correction);
- mann_kendall_hr: the same with S's variance multiplied by the Hamed-Rao factor n / n*, computed
  from the significant autocorrelations of the detrended series' ranks. GRPO rates are autocorrelated
  (the policy moves slowly), and plain Mann-Kendall, which assumes independent steps, then finds
  trends in flat noise and calls plateaus late (tests/test_plateau.py measures both);
- slope_tost: an equivalence test (two one-sided tests at alpha) that slope x window lies inside
  +/- epsilon (floored by the binomial noise as for trend), with an AR(1) long-run (HAC) standard
  error whose correlation is taken at its upper confidence bound, so that a series still rising by
  the whole band is called a plateau at most alpha of the time even on autocorrelated steps;
- stable_level: coefficient of variation below max_cv (for lengths);
- learning_exhausted: the window mean of learnable_group_ratio (GRPO groups whose completions earned
  different rewards) below min_learnable: nothing is left to learn (DUMP's learnability signal).

NaN and infinite values are dropped by `Window.push` and counted in `dropped`; they never reach a
test, so they can never trigger a decision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np

from autocurriculum.policy import PlateauSpec, PlateauTest

_MIN_VALUES = {
    PlateauTest.TREND: 3,  # a slope and a residual variance
    PlateauTest.MANN_KENDALL: 4,
    PlateauTest.MANN_KENDALL_HR: 4,
    PlateauTest.SLOPE_TOST: 4,  # a slope, residuals and at least one lag of their autocovariance
    PlateauTest.STABLE_LEVEL: 2,
    PlateauTest.LEARNING_EXHAUSTED: 1,
}


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@dataclass(frozen=True, slots=True, eq=False)
class Window:
    """The last `size` finite values of one metric, with running sums. Immutable.

    `ring` holds the values in a ring buffer starting at `head` (the oldest value); `total`,
    `total_sq` and `total_xy` are the sums of y, y^2 and t*y with t = 0 for the oldest value;
    `mk_s` is the Mann-Kendall S over all pairs in the window. Compare windows with `==`: two
    windows are equal when they hold the same values in the same order with the same sums.
    """

    size: int
    ring: np.ndarray = field(default=None)  # type: ignore[arg-type]  # None: __post_init__ makes an empty ring
    head: int = 0
    count: int = 0
    dropped: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    total_xy: float = 0.0
    mk_s: int = 0
    since_exact: int = 0

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"a window holds at least one value (size {self.size})")
        if self.ring is None:
            object.__setattr__(self, "ring", _frozen(np.zeros(self.size, dtype=np.float64)))

    # ------------------------------------------------------------ reading

    @property
    def full(self) -> bool:
        return self.count == self.size

    def values(self) -> np.ndarray:
        """The values, oldest first (a copy)."""
        if self.count < self.size:
            return self.ring[: self.count].copy()
        return np.concatenate((self.ring[self.head :], self.ring[: self.head]))

    def unordered(self) -> np.ndarray:
        """The values in ring order (a read-only view): for order-free statistics, without a copy."""
        return self.ring[: self.count]

    def last(self, count: int) -> np.ndarray:
        """The newest `count` values (all of them when there are fewer), oldest first."""
        values = self.values()
        return values if count >= len(values) else values[len(values) - count :]

    def mean(self, count: int | None = None) -> float | None:
        """Exact (fsum) mean of the newest `count` values; None when the window is empty.

        Criteria compare this with thresholds, so it is summed exactly rather than read from the
        running total: ten values of 0.95 must average 0.95, not 0.9499999999999998.
        """
        values = self.unordered() if count is None or count >= self.count else self.last(count)
        return math.fsum(values.tolist()) / len(values) if len(values) else None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Window):
            return NotImplemented
        return (
            (self.size, self.count, self.dropped, self.total, self.total_sq, self.total_xy, self.mk_s, self.since_exact)
            == (other.size, other.count, other.dropped, other.total, other.total_sq, other.total_xy, other.mk_s,
                other.since_exact)
            and np.array_equal(self.values(), other.values())
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Window(size={self.size}, values={self.values().tolist()}, dropped={self.dropped})"

    # ------------------------------------------------------------ updating

    def push(self, value: float | None) -> Window:
        """The window with `value` appended (and the oldest value gone when full).

        None, NaN and infinities are not values: they are counted in `dropped` and change nothing else.
        """
        if value is None or not math.isfinite(value):
            return replace(self, dropped=self.dropped + 1)
        y = float(value)
        ring = self.ring.copy()
        # S changes by the pairs the new value forms with every other (sign(y - other)) and loses the
        # pairs the oldest value formed (sign(other - oldest)): sums that do not depend on ring order
        if self.count < self.size:
            present = ring[: self.count]
            mk_s = self.mk_s + int(np.count_nonzero(present < y)) - int(np.count_nonzero(present > y))
            ring[self.count] = y
            head, count = 0, self.count + 1
            total = self.total + y
            total_sq = self.total_sq + y * y
            total_xy = self.total_xy + self.count * y
        else:
            old = float(ring[self.head])
            mk_s = self.mk_s - int(np.count_nonzero(ring > old)) + int(np.count_nonzero(ring < old))
            ring[self.head] = y
            mk_s += int(np.count_nonzero(ring < y)) - int(np.count_nonzero(ring > y))
            head, count = (self.head + 1) % self.size, self.size
            total_xy = self.total_xy - (self.total - old) + (self.size - 1) * y
            total = self.total - old + y
            total_sq = self.total_sq - old * old + y * y
        since_exact = self.since_exact + 1
        if since_exact >= self.size:  # bound the drift of the running float sums
            exact = np.concatenate((ring[head:], ring[:head])) if count == self.size else ring[:count]
            total, total_sq, total_xy = _sums(exact)
            since_exact = 0
        return Window(self.size, _frozen(ring), head, count, self.dropped, total, total_sq, total_xy, mk_s, since_exact)

    @classmethod
    def of(cls, size: int, values: Sequence[float | None]) -> Window:
        window = cls(size)
        for value in values:
            window = window.push(value)
        return window

    # ------------------------------------------------------------ checkpoints

    def to_json(self) -> dict[str, object]:
        return {
            "size": self.size,
            "values": self.values().tolist(),
            "dropped": self.dropped,
            "sums": [self.total, self.total_sq, self.total_xy],
            "mk_s": self.mk_s,
            "since_exact": self.since_exact,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Window:
        """Rebuild a window exactly, running sums included (JSON keeps every bit of a float)."""
        # Each field goes through int()/float() exactly as before; reading the record as Any keeps that
        # (json_values' stricter readers would also refuse booleans and strings that int()/float() accept).
        record: Mapping[str, Any] = data
        size = int(record["size"])
        values = [float(v) for v in record["values"]]
        if len(values) > size:
            raise ValueError(f"window of size {size} holds {len(values)} values")
        ring = np.zeros(size, dtype=np.float64)
        ring[: len(values)] = values
        total, total_sq, total_xy = (float(s) for s in record["sums"])
        return cls(size, _frozen(ring), 0, len(values), int(record["dropped"]), total, total_sq, total_xy,
                   int(record["mk_s"]), int(record["since_exact"]))


def _sums(values: np.ndarray) -> tuple[float, float, float]:
    positions = np.arange(len(values), dtype=np.float64)
    return math.fsum(values.tolist()), math.fsum((values * values).tolist()), math.fsum((positions * values).tolist())


# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class PlateauResult:
    """One test's verdict on one metric's window, with what it measured and the bound it used."""

    metric: str
    test: str
    statistic: float  # slope x window reach, |z|, CV, learnable share, or largest late improvement
    bound: float  # what the statistic was compared with
    plateaued: bool  # only ever True when `ready`
    ready: bool  # the window holds enough values to judge

    def to_json(self) -> dict[str, object]:
        statistic = round(self.statistic, 6) if math.isfinite(self.statistic) else None
        return {"test": self.test, "statistic": statistic, "bound": round(self.bound, 6),
                "plateaued": self.plateaued, "ready": self.ready}


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
    reach = trend_reach(len(y), *_sums(y), alpha)
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
    return _frozen(t), float(t @ t), _frozen(weights)


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


def trend_epsilon(spec: PlateauSpec, level: float | None, completions_per_step: int, is_rate: bool) -> float:
    """The trend band: the policy's epsilon, floored by noise_multiplier x one step's binomial SE."""
    if not is_rate or level is None:
        return spec.epsilon
    p = min(max(level, 0.0), 1.0)
    return max(spec.epsilon, spec.noise_multiplier * math.sqrt(p * (1.0 - p) / max(completions_per_step, 1)))


def values_needed(spec: PlateauSpec) -> int:
    """How many values the test must see before it may judge."""
    if spec.test is PlateauTest.PATIENCE:  # the last `patience` values against at least as many before them
        return max(spec.window, 2 * spec.patience)
    return max(spec.window, _MIN_VALUES[spec.test])


def run_test(spec: PlateauSpec, window: Window, completions_per_step: int, is_rate: bool) -> PlateauResult:
    """Judge one metric's window with the test its spec names.

    The test reads the newest `values_needed(spec)` values. When that is the whole window (the usual
    case: the controller sizes each window for its tests) the trend, level and Mann-Kendall
    statistics come from the running sums in O(1) (Mann-Kendall's tie count in O(window log
    window)); otherwise they are computed from the values.
    """
    needed = values_needed(spec)
    ready = window.count >= needed
    whole = needed >= window.count
    # order-free statistics read the ring as it is; only patience and a partial window need order
    values = window.unordered() if whole and spec.test is not PlateauTest.PATIENCE else window.last(needed)
    n = len(values)
    if spec.test is PlateauTest.PATIENCE:
        statistic = patience_statistic(values, spec.patience)
        bound = spec.min_delta
        plateaued = statistic <= bound
    elif spec.test is PlateauTest.TREND:
        sums = (window.total, window.total_sq, window.total_xy) if whole else _sums(values)
        level = sums[0] / n if n else None
        bound = trend_epsilon(spec, level, completions_per_step, is_rate)
        statistic = trend_reach(n, *sums, spec.alpha)
        plateaued = statistic <= bound
    elif spec.test is PlateauTest.MANN_KENDALL:
        s = window.mk_s if whole else mann_kendall_s(values)
        statistic = mann_kendall_z(n, s, values)
        bound = critical_z(spec.alpha)
        plateaued = statistic < bound
    elif spec.test is PlateauTest.MANN_KENDALL_HR:
        ordered = window.last(needed)
        s = window.mk_s if whole else mann_kendall_s(ordered)
        statistic = mann_kendall_hr_z(n, s, ordered, spec.alpha)
        bound = critical_z(spec.alpha)
        plateaued = statistic < bound
    elif spec.test is PlateauTest.SLOPE_TOST:
        level = math.fsum(values.tolist()) / n if n else None
        bound = trend_epsilon(spec, level, completions_per_step, is_rate)
        statistic = slope_tost_reach(window.last(needed), spec.alpha)
        plateaued = statistic < bound
    elif spec.test is PlateauTest.STABLE_LEVEL:
        if whole:
            statistic = coefficient_of_variation(n, window.total, window.total_sq)
        else:
            statistic = stable_level_test(values, spec.max_cv)[0]
        bound = spec.max_cv
        plateaued = statistic <= bound
    else:  # PlateauTest.LEARNING_EXHAUSTED
        statistic = math.fsum(values.tolist()) / n if n else math.nan
        bound = spec.min_learnable
        plateaued = statistic < bound
    plateaued = bool(ready and math.isfinite(statistic) and plateaued)
    return PlateauResult(spec.metric, spec.test.value, statistic, bound, plateaued, ready)
