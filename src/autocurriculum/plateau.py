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
from typing import Any

import numpy as np

from autocurriculum.plateau_statistics import (
    coefficient_of_variation,
    critical_z,
    frozen,
    mann_kendall_hr_z,
    mann_kendall_s,
    mann_kendall_z,
    patience_statistic,
    running_sums,
    slope_tost_reach,
    stable_level_test,
    trend_reach,
)
from autocurriculum.policy import PlateauSpec, PlateauTest

_MIN_VALUES = {
    PlateauTest.TREND: 3,  # a slope and a residual variance
    PlateauTest.MANN_KENDALL: 4,
    PlateauTest.MANN_KENDALL_HR: 4,
    PlateauTest.SLOPE_TOST: 4,  # a slope, residuals and at least one lag of their autocovariance
    PlateauTest.STABLE_LEVEL: 2,
    PlateauTest.LEARNING_EXHAUSTED: 1,
}


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
            object.__setattr__(self, "ring", frozen(np.zeros(self.size, dtype=np.float64)))

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
            total, total_sq, total_xy = running_sums(exact)
            since_exact = 0
        return Window(self.size, frozen(ring), head, count, self.dropped, total, total_sq, total_xy, mk_s, since_exact)

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
        return cls(size, frozen(ring), 0, len(values), int(record["dropped"]), total, total_sq, total_xy,
                   int(record["mk_s"]), int(record["since_exact"]))


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
        sums = (window.total, window.total_sq, window.total_xy) if whole else running_sums(values)
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
