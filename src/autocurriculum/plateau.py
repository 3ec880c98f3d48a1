"""Rolling windows and plateau tests: pure functions of a window of per-step values (numpy only).

GRPO statistics are noisy: with 16 completions a step, one step's rate has a standard deviation of
~10 points and a tiny model's compliance wanders between 82% and 100% (DESIGN.md). A plateau test
must not read that wander as progress, nor a slow rise as a plateau. Tests, selectable per metric:

- patience (the Keras ReduceLROnPlateau rule, the benchmark's anchor): no new best beyond min_delta
  in the last `patience` steps;
- trend: the confidence interval of the OLS slope, times the window length (the change the trend
  predicts over one window), lies inside +/- epsilon; for rates epsilon is at least
  noise_multiplier * sqrt(p(1-p)/n), the binomial standard error of one step's rate, so the test is
  as strict as the noise allows;
- mann_kendall: no monotonic trend at significance alpha (normal approximation, tie-corrected);
- stable_level: coefficient of variation below max_cv (for lengths);
- learning_exhausted: the share of GRPO groups with any reward variance has fallen below
  min_learnable: nothing is left to learn from (DUMP's learnability signal).

NaN and infinite values are dropped by `Window.push` and counted; they never reach a test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from autocurriculum.policy import PlateauSpec, PlateauTest


@dataclass(frozen=True, slots=True)
class Window:
    """The last `size` finite values of one metric; immutable, O(size) memory."""

    size: int
    values: tuple[float, ...] = ()
    dropped: int = 0

    def push(self, value: float | None) -> Window:
        if value is None or not math.isfinite(value):
            return Window(self.size, self.values, self.dropped + 1)
        values = self.values + (float(value),)
        if len(values) > self.size:
            values = values[len(values) - self.size :]
        return Window(self.size, values, self.dropped)

    def last(self, count: int) -> tuple[float, ...]:
        return self.values[-count:] if count <= len(self.values) else self.values

    def mean(self, count: int | None = None) -> float | None:
        values = self.values if count is None else self.last(count)
        return math.fsum(values) / len(values) if values else None


@dataclass(frozen=True, slots=True)
class PlateauResult:
    metric: str
    test: str
    statistic: float  # what the test measured (slope x window, z, CV, share, steps since best)
    bound: float  # what it was compared with
    plateaued: bool
    ready: bool  # enough values to judge

    def to_json(self) -> dict[str, object]:
        return {"test": self.test, "statistic": round(self.statistic, 6), "bound": round(self.bound, 6),
                "plateaued": self.plateaued, "ready": self.ready}


def _z(alpha: float) -> float:
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def patience_test(values: Sequence[float], patience: int, min_delta: float) -> tuple[float, bool, bool]:
    """Steps since the last new best (mode max); plateau when >= patience."""
    if len(values) < patience + 1:
        return 0.0, False, False
    best, since = values[0], 0
    for value in values[1:]:
        if value > best + min_delta:
            best, since = value, 0
        else:
            since += 1
    return float(since), since >= patience, True


def trend_test(values: Sequence[float], epsilon: float, alpha: float) -> tuple[float, bool, bool]:
    """Largest |end of the slope CI| x window; plateau when inside +/- epsilon."""
    n = len(values)
    if n < 3:
        return math.inf, False, False
    y = np.asarray(values, dtype=np.float64)
    x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    sxx = float(x @ x)
    slope = float(x @ (y - y.mean())) / sxx
    residual = y - y.mean() - slope * x
    se = math.sqrt(max(float(residual @ residual) / (n - 2), 0.0) / sxx)
    reach = (abs(slope) + _z(alpha) * se) * n
    return reach, reach <= epsilon, True


def mann_kendall_test(values: Sequence[float], alpha: float) -> tuple[float, bool, bool]:
    """|z| of the Mann-Kendall S statistic; plateau when below the two-sided critical value."""
    n = len(values)
    if n < 4:
        return math.inf, False, False
    y = np.asarray(values, dtype=np.float64)
    s = float(np.sign(y[None, :] - y[:, None])[np.triu_indices(n, 1)].sum())
    _, counts = np.unique(y, return_counts=True)
    variance = (n * (n - 1) * (2 * n + 5) - float(np.sum(counts * (counts - 1) * (2 * counts + 5)))) / 18.0
    if variance <= 0:
        return 0.0, True, True
    z = (s - math.copysign(1.0, s)) / math.sqrt(variance) if s != 0 else 0.0
    return abs(z), abs(z) < _z(alpha), True


def stable_level_test(values: Sequence[float], max_cv: float) -> tuple[float, bool, bool]:
    if len(values) < 3:
        return math.inf, False, False
    y = np.asarray(values, dtype=np.float64)
    mean = float(y.mean())
    if mean <= 0:
        return math.inf, False, True
    cv = float(y.std()) / mean
    return cv, cv <= max_cv, True


def run_test(spec: PlateauSpec, window: Window, completions_per_step: int, is_rate: bool) -> PlateauResult:
    """Judge one metric's window with the test its spec names."""
    values = window.last(spec.window)
    ready_count = len(values) >= spec.window
    if spec.test is PlateauTest.PATIENCE:
        statistic, plateaued, ready = patience_test(values, spec.patience, spec.min_delta)
        bound = float(spec.patience)
    elif spec.test is PlateauTest.TREND:
        epsilon = spec.epsilon
        if is_rate and values:
            p = min(max(math.fsum(values) / len(values), 0.0), 1.0)
            epsilon = max(epsilon, spec.noise_multiplier * math.sqrt(p * (1 - p) / max(completions_per_step, 1)))
        statistic, plateaued, ready = trend_test(values, epsilon, spec.alpha)
        bound = epsilon
    elif spec.test is PlateauTest.MANN_KENDALL:
        statistic, plateaued, ready = mann_kendall_test(values, spec.alpha)
        bound = _z(spec.alpha)
    elif spec.test is PlateauTest.STABLE_LEVEL:
        statistic, plateaued, ready = stable_level_test(values, spec.max_cv)
        bound = spec.max_cv
    else:  # LEARNING_EXHAUSTED
        mean = math.fsum(values) / len(values) if values else math.inf
        statistic, plateaued, ready = mean, bool(values) and mean < spec.min_learnable, bool(values)
        bound = spec.min_learnable
    ready = ready and ready_count
    return PlateauResult(spec.metric, spec.test.value, statistic if math.isfinite(statistic) else 1e9, bound,
                         plateaued and ready, ready)
