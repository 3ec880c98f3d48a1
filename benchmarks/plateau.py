"""Plateau tests on simulated and recorded GRPO curves, side by side with two anchors; decide() time.

Why: a plateau test that calls a plateau while the model is still improving switches the curriculum
too early, and one that is slow wastes the budget. Real GRPO rates are autocorrelated (the policy
moves slowly, so neighbouring steps share their errors), which fools every test that assumes
independent steps. This prints, for every test of plateau.py (and variants) on the same draws:

  false     share of series with any plateau verdict before the plateau begins
  per step  share of the steps before the plateau with a verdict
  delay     steps from the start of the plateau to the first verdict (median / 90th percentile)
  missed    share of series with no verdict after the plateau began
  cost      microseconds per call at the test's window

"The plateau begins" at the first step t0 after which the true curve never again moves by more
than the policy's epsilon over 40 steps (--reference-window; 0.02 in policies/default.toml): a verdict
before t0 gives up more than epsilon of improvement (or lets a fall of more than epsilon go on).
The definition is the same for every test, whatever its own window or band.

Curves (true per-step rate p): rise+flat (linear from U(0.3, 0.6) to 0.9 over U{40..80} steps,
then flat), saturating (0.9 - gap * exp(-t / tau), gap U(0.3, 0.6), tau U(10, 30)), falling
(linear from 0.9 down to U(0.5, 0.7) over U{40..80} steps, then flat), staircase (jumps of 0.1
every U{8..16} steps from U(0.4, 0.5) up to 0.9, then flat). Noise: iid (Bernoulli draws only), or
an AR(1) wander of p (phi 0.5 or 0.8, stationary sd 0.05) under the draws; each step draws 4
groups x 4 completions (16, the policy's count). Anchors: Keras ReduceLROnPlateau (mode max,
whole-run best, wait >= patience) and Ray Tune's TrialPlateauStopper (std of the last
num_results values < std after grace_period values; Ray's defaults 0.01 / 4 / 4, and the same rule
over the policy's window with std = one step's binomial standard error).

Recorded curves (benchmarks/plateau_curves.json, written by benchmarks/plateau_curves.py): each
detector is run once on each recorded rate series (phase segments of 30 steps or more); the table
gives its first verdict step and the gain the run still made after it.

Then one decide() at window 1,000 (the policy with metrics.window and plateau.window set to 1,000,
windows full): median and 99th percentile over repeated calls, against the 1 ms target.

Run: python benchmarks/plateau.py [--series 300] [--policy policies/default.toml] [--frontier] [--recorded-only]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from autocurriculum.controller import decide, initial_state
from autocurriculum.observation import StepObservation
from autocurriculum.plateau import Window, run_test, values_needed
from autocurriculum.policy import PlateauSpec, PlateauTest, expand_plan, load

REPO = Path(__file__).resolve().parents[1]
CURVES = REPO / "benchmarks" / "plateau_curves.json"
GROUPS, GROUP_SIZE = 4, 4
COMPLETIONS = GROUPS * GROUP_SIZE
FLAT_TAIL = 150
AR_SD = 0.05
REFERENCE_WINDOW = 40  # "still moving": by more than the policy's epsilon over this many steps (--reference-window)


# ---------------------------------------------------------------- the simulated series


def rise_flat(rng: np.random.Generator) -> np.ndarray:
    rise = int(rng.integers(40, 81))
    return np.concatenate((np.linspace(rng.uniform(0.3, 0.6), 0.9, rise, endpoint=False), np.full(FLAT_TAIL, 0.9)))


def saturating(rng: np.random.Generator) -> np.ndarray:
    gap, tau = rng.uniform(0.3, 0.6), rng.uniform(10.0, 30.0)
    return 0.9 - gap * np.exp(-np.arange(int(6 * tau) + FLAT_TAIL) / tau)


def falling(rng: np.random.Generator) -> np.ndarray:
    fall = int(rng.integers(40, 81))
    low = rng.uniform(0.5, 0.7)
    return np.concatenate((np.linspace(0.9, low, fall, endpoint=False), np.full(FLAT_TAIL, low)))


def staircase(rng: np.random.Generator) -> np.ndarray:
    level, parts = rng.uniform(0.4, 0.5), []
    while level < 0.9:
        parts.append(np.full(int(rng.integers(8, 17)), level))
        level = min(level + 0.1, 0.9)
    return np.concatenate((*parts, np.full(FLAT_TAIL, 0.9)))


SHAPES: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "rise+flat": rise_flat, "saturating": saturating, "falling": falling, "staircase": staircase,
}
NOISES = {"iid": 0.0, "AR(1) phi 0.5": 0.5, "AR(1) phi 0.8": 0.8}


def ar1(rng: np.random.Generator, steps: int, phi: float, sd: float = AR_SD) -> np.ndarray:
    """AR(1) with stationary standard deviation `sd`, started from its stationary distribution."""
    innovations = rng.normal(0.0, sd * math.sqrt(1.0 - phi * phi), steps)
    out = np.empty(steps)
    level = rng.normal(0.0, sd)
    for t in range(steps):
        level = phi * level + innovations[t]
        out[t] = level
    return out


def plateau_start(curve: np.ndarray, epsilon: float, window: int) -> int:
    """First step after which the curve never again moves by more than epsilon over `window` steps."""
    extended = np.concatenate((curve, np.full(window, curve[-1])))
    moves = np.abs(extended[window: window + len(curve)] - curve)
    moving = np.flatnonzero(moves > epsilon)
    return int(moving[-1]) + 1 if len(moving) else 0


def observe(rng: np.random.Generator, p: float) -> tuple[float, float]:
    """One step: (rate over 16 completions, share of the 4 groups whose completions differ)."""
    hits = rng.random((GROUPS, GROUP_SIZE)) < p
    per_group = hits.sum(axis=1)
    learnable = np.count_nonzero((per_group > 0) & (per_group < GROUP_SIZE)) / GROUPS
    return float(hits.mean()), learnable


# ---------------------------------------------------------------- the detectors


class Keras:
    """ReduceLROnPlateau(mode='max'): best over the whole run, wait resets on an improvement > min_delta."""

    def __init__(self, patience: int, min_delta: float) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best, self.wait = -np.inf, 0

    def step(self, rate: float) -> bool:
        if rate > self.best + self.min_delta:
            self.best, self.wait = rate, 0
        else:
            self.wait += 1
        return self.wait >= self.patience


class RayPlateau:
    """Ray Tune's TrialPlateauStopper rule: after grace_period results, stop when the std of the last
    num_results results is below `std` (mode-free; metric_threshold unset)."""

    def __init__(self, std: float, num_results: int, grace_period: int) -> None:
        self.std, self.num_results, self.grace_period = std, num_results, grace_period
        self.seen: list[float] = []

    def step(self, rate: float) -> bool:
        self.seen.append(rate)
        if len(self.seen) < max(self.grace_period, self.num_results):
            return False
        return float(np.std(self.seen[-self.num_results:])) < self.std


Anchor = Callable[[], "Keras | RayPlateau"]


def detectors(base: PlateauSpec, frontier: bool) -> dict[str, PlateauSpec | Anchor]:
    """Anchors, every test with the policy's settings, and variants worth comparing with them."""
    binomial_se = math.sqrt(0.9 * 0.1 / COMPLETIONS)
    out: dict[str, PlateauSpec | Anchor] = {
        "anchor: keras patience": lambda: Keras(base.patience, base.min_delta),
        "anchor: ray plateau (defaults)": lambda: RayPlateau(0.01, 4, 4),
        f"anchor: ray plateau (n {base.window}, std {binomial_se:.3f})": lambda: RayPlateau(binomial_se, base.window,
                                                                                              base.window),
    }
    for test in PlateauTest:
        metric = "learnable_group_ratio" if test is PlateauTest.LEARNING_EXHAUSTED else "extraction_rate"
        out[test.value] = replace(base, test=test, metric=metric)
    candidates = [(PlateauTest.MANN_KENDALL, 40, 0.05, None)]  # the default before Hamed-Rao
    candidates += [(test, window, 0.05, None) for window in (50, 60)
                   for test in (PlateauTest.MANN_KENDALL, PlateauTest.MANN_KENDALL_HR)]
    candidates += [(PlateauTest.SLOPE_TOST, window, 0.05, multiplier) for window, multiplier in
                   ((40, 2.0), (50, 2.0), (60, 2.0), (60, 2.5))]
    if frontier:
        candidates = [(PlateauTest.SLOPE_TOST, window, 0.05, multiplier) for window in (20, 40, 60)
                      for multiplier in (0.5, 1.0, 1.5, 2.0, 3.0)]
        candidates += [(test, window, alpha, None) for window in (20, 40, 60) for alpha in (0.05, 0.2)
                       for test in (PlateauTest.MANN_KENDALL, PlateauTest.MANN_KENDALL_HR)]
    for test, window, alpha, multiplier in candidates:
        name = f"{test.value} w{window} " + (f"x{multiplier}" if multiplier is not None else f"a{alpha}")
        out[name] = replace(base, test=test, window=window, alpha=alpha,
                            noise_multiplier=base.noise_multiplier if multiplier is None else multiplier)
    return out


# ---------------------------------------------------------------- the experiment


@dataclass
class Outcome:
    false_by_shape: dict[str, list[bool]] = field(default_factory=dict)
    early_verdicts: int = 0
    early_steps: int = 0
    delay: list[int | None] = field(default_factory=list)

    def add(self, shape: str, verdicts: int, steps: int, delay: int | None) -> None:
        self.false_by_shape.setdefault(shape, []).append(verdicts > 0)
        self.early_verdicts += verdicts
        self.early_steps += steps
        self.delay.append(delay)


def run_series(p: np.ndarray, start: int, found: dict[str, PlateauSpec | Anchor], rng: np.random.Generator,
               rates: np.ndarray | None = None) -> dict[str, tuple[int, int | None, int | None]]:
    """Every detector on one series: (verdicts before `start`, first verdict step, delay after `start`).

    The rates are drawn from p (or given, for recorded series); tests that read the same metric over
    the same length share one window, as in the controller.
    """
    keys = {name: (spec.metric, values_needed(spec)) for name, spec in found.items() if isinstance(spec, PlateauSpec)}
    windows = {key: Window(key[1]) for key in set(keys.values())}
    anchors = {name: make() for name, make in found.items() if not isinstance(make, PlateauSpec)}
    early = dict.fromkeys(found, 0)
    first: dict[str, int | None] = dict.fromkeys(found)
    delay: dict[str, int | None] = dict.fromkeys(found)
    active = set(found)
    for t in range(len(p)):
        if rates is None:
            rate, learnable = observe(rng, float(min(max(p[t], 0.0), 1.0)))
        else:
            rate, learnable = float(rates[t]), math.nan
        for key, window in windows.items():
            windows[key] = window.push(learnable if key[0] == "learnable_group_ratio" else rate)
        for name in list(active):
            spec = found[name]
            if isinstance(spec, PlateauSpec):
                plateau = run_test(spec, windows[keys[name]], COMPLETIONS, True).plateaued
            else:
                plateau = anchors[name].step(rate)
            if plateau:
                if first[name] is None:
                    first[name] = t
                if t < start:
                    early[name] += 1
                else:
                    delay[name] = t - start
                    active.discard(name)
        if not active:
            break
    return {name: (early[name], first[name], delay[name]) for name in found}


def run_noise(found: dict[str, PlateauSpec | Anchor], base: PlateauSpec, phi: float, series: int,
              seed: int) -> dict[str, Outcome]:
    outcomes = {name: Outcome() for name in found}
    for shape_index, (shape, make) in enumerate(SHAPES.items()):
        for index in range(series):
            rng = np.random.default_rng([seed, shape_index, index])
            curve = make(rng)
            start = plateau_start(curve, base.epsilon, REFERENCE_WINDOW)
            p = curve + ar1(rng, len(curve), phi) if phi else curve
            for name, (early, _, delay) in run_series(p, start, found, rng).items():
                outcomes[name].add(shape, early, start, delay)
    return outcomes


def summary(delays: list[int | None]) -> tuple[str, str]:
    found = sorted(d for d in delays if d is not None)
    missed = 1 - len(found) / len(delays)
    if not found:
        return "-", f"{missed:.0%}"
    return f"{statistics.median(found):.0f} / {found[int(0.9 * (len(found) - 1))]:.0f}", f"{missed:.1%}"


def print_rows(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  ".join(str(cell).rjust(w) if i else str(cell).ljust(w) for i, (cell, w) in enumerate(zip(row, widths))))


def print_table(title: str, results: dict[str, Outcome], costs: dict[str, float]) -> None:
    print(f"\n{title}")
    head = ("test", "false", *SHAPES, "per step", "delay med / p90", "missed", "cost us")
    rows = []
    for name, outcome in results.items():
        pooled = [f for flags in outcome.false_by_shape.values() for f in flags]
        rows.append((
            name,
            f"{np.mean(pooled):.1%}",
            *(f"{np.mean(outcome.false_by_shape[shape]):.1%}" for shape in SHAPES),
            f"{outcome.early_verdicts / outcome.early_steps:.2%}" if outcome.early_steps else "-",
            *summary(outcome.delay),
            f"{costs[name]:.0f}" if name in costs else "-",
        ))
    print_rows(head, rows)


# ---------------------------------------------------------------- the recorded runs


def moving_average(values: np.ndarray, span: int) -> np.ndarray:
    """Centred moving average, the span shrinking at both ends."""
    half = span // 2
    cumulative = np.concatenate(([0.0], np.cumsum(values)))
    out = np.empty(len(values))
    for t in range(len(values)):
        low, high = max(0, t - half), min(len(values), t + half + 1)
        out[t] = (cumulative[high] - cumulative[low]) / (high - low)
    return out


def recorded_series(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(run/metric[/phase], rates) for each phase segment of each recorded run long enough to judge."""
    document = json.loads(path.read_text(encoding="utf-8"))
    for run, data in document["runs"].items():
        phases = data["phase"]
        for metric in ("extraction_rate", "strict_compliance", "accuracy"):
            values = data["metrics"][metric]
            segment_start = 0
            for t in range(1, len(phases) + 1):
                if t == len(phases) or phases[t] != phases[segment_start]:
                    segment = [v for v in values[segment_start:t] if v is not None]
                    if len(segment) >= 30:
                        yield f"{run} {phases[segment_start]} {metric}", np.asarray(segment)
                    segment_start = t


def lag_one(values: np.ndarray) -> float:
    centred = values - values.mean()
    return float(centred[1:] @ centred[:-1] / (centred @ centred)) if centred @ centred > 0 else 0.0


def print_recorded(found: dict[str, PlateauSpec | Anchor], path: Path) -> None:
    """Each detector once on each recorded series: its first verdict, and what the run still gained after it.

    A recorded series has no known true curve, and 16 completions a step are too few to locate the
    start of a plateau within the policy's epsilon (the 15-step mean of a rate still wanders by ~0.03),
    so instead of a false/true call this shows the step of the first verdict and the gain the run
    made after it: the mean of the last 30 steps minus the mean of the 15 steps up to the verdict.
    """
    if not path.exists():
        print(f"\n(no recorded curves: run python benchmarks/plateau_curves.py to write {path.name})")
        return
    series = list(recorded_series(path))
    print(f"\nrecorded runs ({path.name}): first verdict step (gain after it: mean of the last 30 steps - mean "
          f"of the 15 up to the verdict); '-' = no verdict")
    columns = []
    for index, (label, rates) in enumerate(series):
        smooth = moving_average(rates, 15)
        residual = rates - smooth
        print(f"  [{index}] {label}: {len(rates)} steps, first 15 {rates[:15].mean():.3f} -> last 30 "
              f"{rates[-30:].mean():.3f}, residual lag-1 autocorrelation {lag_one(residual):+.2f}")
        columns.append((rates, run_series(np.zeros(len(rates)), len(rates), found, np.random.default_rng(0), rates)))
    rows = []
    for name in found:
        cells = []
        for rates, verdicts in columns:
            _, first, _ = verdicts[name]
            if first is None:
                cells.append("-")
            else:
                gain = rates[-30:].mean() - rates[max(0, first - 14): first + 1].mean()
                cells.append(f"{first} ({gain:+.2f})")
        rows.append((name, *cells))
    print_rows(("test", *(f"[{i}]" for i in range(len(columns)))), rows)


# ---------------------------------------------------------------- cost per call, and decide() at window 1,000


def cost_per_call(found: dict[str, PlateauSpec | Anchor]) -> dict[str, float]:
    """Microseconds per run_test call on a full window of the test's own length."""
    rng = np.random.default_rng(0)
    out = {}
    for name, spec in found.items():
        if isinstance(spec, PlateauSpec):
            size = values_needed(spec)
            full = Window.of(size, (rng.binomial(COMPLETIONS, 0.9, 2 * size) / COMPLETIONS).tolist())
            out[name] = _time(lambda spec=spec, full=full: run_test(spec, full, COMPLETIONS, True)) * 1e6  # type: ignore[misc]
    return out


@dataclass(frozen=True)
class Timing:
    wall: list[float]
    cpu: list[float]
    windows: int

    @staticmethod
    def quantile(values: list[float], q: float) -> float:
        return values[int(q * (len(values) - 1))]

    def line(self, name: str, values: list[float]) -> str:
        return (f"  {name} median {statistics.median(values) * 1e3:.3f} ms, p90 {self.quantile(values, 0.9) * 1e3:.3f} ms, "
                f"p99 {self.quantile(values, 0.99) * 1e3:.3f} ms")


def decide_timing(policy_path: Path, window: int, calls: int, seed: int, test: str | None = None) -> Timing:
    """decide() with every window full at `window`; `test` replaces the [plateau] default test."""
    overrides = [f"metrics.window={window}", f"plateau.window={window}", f"plateau.patience={window - 1}"]
    policy = load(policy_path, overrides=overrides + ([f'plateau.test="{test}"'] if test else []))
    plan = expand_plan(policy)
    rng = np.random.default_rng(seed)

    def observation(number: int) -> StepObservation:
        rate, learnable = observe(rng, 0.9)
        metrics = {"extraction_rate": rate, "strict_compliance": rate, "refusal_rate": 0.0625,
                   "mean_length_tokens": float(rng.normal(40, 3)), "accuracy": rate / 2, "rambling_rate": 0.0,
                   "empty_completion_rate": 0.0, "distinct_completion_ratio": 1.0, "learnable_group_ratio": learnable,
                   "reward_mean": 0.4, "hallucination_rate": 0.1}
        return StepObservation(number, COMPLETIONS, metrics)

    state = initial_state(plan)
    warm = window + policy.judgement.grace_steps + 1
    for number in range(1, warm + 1):  # refusals at 6% keep phase 1's criteria failing: no switch
        state = decide(policy, plan, state, observation(number)).state
    assert state.plan_step == 0 and all(w.count == w.size for w in state.windows.values()), "windows not full"
    probe = [observation(warm + i) for i in range(calls)]
    wall, cpu = [], []
    for obs in probe:
        started, started_cpu = time.perf_counter(), time.thread_time()
        decide(policy, plan, state, obs)
        cpu.append(time.thread_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return Timing(sorted(wall), sorted(cpu), len(state.windows))


def test_timings(window: int) -> Iterator[tuple[str, float]]:
    rng = np.random.default_rng(0)
    values = (rng.binomial(COMPLETIONS, 0.9, 3 * window) / COMPLETIONS).tolist()
    full = Window.of(window, values)
    yield "Window.push", _time(lambda: full.push(0.5))
    for test in PlateauTest:
        spec = PlateauSpec("extraction_rate", test, window=window, patience=window // 2)
        yield f"run_test {test.value}", _time(lambda spec=spec: run_test(spec, full, COMPLETIONS, True))  # type: ignore[misc]


def _time(call: Callable[[], object], repeat: int = 200) -> float:
    best = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeat):
            call()
        best.append((time.perf_counter() - started) / repeat)
    return min(best)


def plateau_defaults(path: Path) -> PlateauSpec:
    """The policy's [plateau] table as a spec on extraction_rate (the policy is validated first)."""
    load(path)
    table = tomllib.loads(path.read_text(encoding="utf-8")).get("plateau", {})
    fields = {k: v for k, v in table.items() if k in PlateauSpec.__dataclass_fields__}
    fields["test"] = PlateauTest(fields.get("test", PlateauTest.TREND.value))
    fields.setdefault("window", 10)
    return PlateauSpec(metric="extraction_rate", **fields)


def main(argv: list[str] | None = None) -> int:
    global GROUPS, COMPLETIONS, REFERENCE_WINDOW  # the simulation's settings, set once from the arguments
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=300, help="series per curve shape and noise")
    parser.add_argument("--policy", type=Path, default=REPO / "policies" / "default.toml")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--frontier", action="store_true",
                        help="sweep windows and bands of the new tests instead of the few candidates")
    parser.add_argument("--noise", action="append", choices=list(NOISES), help="only these noises (default: all)")
    parser.add_argument("--curves", type=Path, default=CURVES)
    parser.add_argument("--reference-window", type=int, default=REFERENCE_WINDOW,
                        help="a verdict is false while the true curve would still move by more than epsilon over this many steps")
    parser.add_argument("--recorded-only", action="store_true", help="skip the simulated series")
    parser.add_argument("--skip-timing", action="store_true",
                        help="skip decide() at window 1,000 (it is set up for policies/default.toml's plan)")
    parser.add_argument("--completions", type=int, default=COMPLETIONS,
                        help="completions a step (4 per group); 16 by default, the quickstart's count")
    args = parser.parse_args(argv)

    GROUPS, COMPLETIONS = max(args.completions // GROUP_SIZE, 1), max(args.completions // GROUP_SIZE, 1) * GROUP_SIZE
    REFERENCE_WINDOW = args.reference_window
    base = plateau_defaults(args.policy)
    print(f"policy {args.policy.name} [plateau]: window {base.window}, patience {base.patience}, min_delta "
          f"{base.min_delta}, epsilon {base.epsilon}, noise_multiplier {base.noise_multiplier}, alpha {base.alpha}, "
          f"max_cv {base.max_cv}, min_learnable {base.min_learnable}; {args.series} series per shape and noise, "
          f"false while the curve moves > {base.epsilon} over {REFERENCE_WINDOW} steps; "
          f"{COMPLETIONS} completions a step; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    found = detectors(base, args.frontier)
    costs = cost_per_call(found)
    for noise in [] if args.recorded_only else args.noise or list(NOISES):
        started = time.perf_counter()
        results = run_noise(found, base, NOISES[noise], args.series, args.seed)
        print_table(f"{noise} ({time.perf_counter() - started:.0f} s)", results, costs)
    print("false = share of series with a plateau verdict before the plateau began (pooled, then per shape); "
          "per step = share of those steps\nwith one; delay = steps from the start of the plateau to the first "
          "verdict; missed = no verdict after it began; cost = one call at the test's window")
    print_recorded(found, args.curves)
    if args.skip_timing:
        return 0

    timing = decide_timing(args.policy, 1000, args.calls, args.seed)
    median = statistics.median(timing.cpu)
    print(f"\ndecide() at window 1,000 ({args.policy.name}, {timing.windows} full windows, {args.calls} calls; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(timing.line("cpu", timing.cpu))
    print(timing.line("wall", timing.wall))
    print(f"  target < 1 ms (median CPU time of one call): {'met' if median < 1e-3 else 'NOT MET'}")
    for other in (PlateauTest.MANN_KENDALL, PlateauTest.SLOPE_TOST):  # the same policy with another default test
        if other is not base.test:
            print(timing.line(f"cpu with test = {other.value}:", decide_timing(args.policy, 1000, args.calls, args.seed,
                                                                                other.value).cpu))
    for name, seconds in test_timings(1000):
        print(f"  {name:28s} {seconds * 1e6:7.1f} us at window 1,000")
    return 0 if median < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
