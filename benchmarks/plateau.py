"""Plateau tests on simulated GRPO series, side by side with the patience-only anchor; decide() time.

Why: a plateau test that calls a plateau while the model is still improving switches the curriculum
too early, and one that never calls it on a real plateau wastes the budget. This prints, for each
test of plateau.py (with a policy's [plateau] settings), over SERIES simulated series per scenario:

  rising then flat   p rises linearly from U(0.3, 0.6) to 0.9 over U{40..80} steps, then stays at
                     0.9 with the wander below; false plateau = any plateau verdict before the rise
                     ends; delay = steps from the end of the rise to the first verdict
  flat, wandering    p = 0.9 plus a slow AR(1) wander clipped to [0.82, 1.0] (a tiny model's
                     compliance per tenth of a run, docs/design.md "Plateaus and noise");
                     delay = steps to the first verdict
  slowly rising      p rises from 0.5 to 0.9 over 400 steps; false plateau = any verdict in 300 steps

Each step draws 4 groups x 4 completions (16 a step, Bernoulli(p)); the rate is their mean and
learnable_group_ratio the share of groups not all alike (what learning_exhausted reads). The
anchor is Keras ReduceLROnPlateau's rule (mode max, whole-run best, wait >= patience with the
policy's patience and min_delta), the patience-only rule a practitioner would reach for.
stable_level is meant for lengths; it is shown on the rate for completeness.

Then one decide() at window 1,000 (policies/default.toml with metrics.window and plateau.window
set to 1,000, windows full): median and 99th percentile over repeated calls, against the 1 ms target.

Run: python benchmarks/plateau.py [--series 1000] [--policy policies/default.toml] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from autocurriculum.controller import decide, initial_state
from autocurriculum.observation import StepObservation
from autocurriculum.plateau import Window, run_test, values_needed
from autocurriculum.policy import PlateauSpec, PlateauTest, Policy, expand_plan, load

REPO = Path(__file__).resolve().parents[1]
GROUPS, GROUP_SIZE = 4, 4
COMPLETIONS = GROUPS * GROUP_SIZE
ANCHOR = "keras_patience"


# ---------------------------------------------------------------- the simulated series


def wander(rng: np.random.Generator, steps: int) -> np.ndarray:
    """A slow AR(1) drift around 0.9: per-tenth means range over roughly 0.82-1.0."""
    w, out = 0.0, np.empty(steps)
    for t in range(steps):
        w = 0.95 * w + rng.normal(0.0, 0.015)
        out[t] = w
    return out


@dataclass(frozen=True)
class Series:
    p: np.ndarray  # the true compliance per step
    rise_end: int  # first step of the plateau (len(p) when it never comes)


def rising_then_flat(rng: np.random.Generator) -> Series:
    rise = int(rng.integers(40, 81))
    start = rng.uniform(0.3, 0.6)
    flat = 150
    p = np.concatenate((np.linspace(start, 0.9, rise, endpoint=False), np.clip(0.9 + wander(rng, flat), 0.82, 1.0)))
    return Series(p, rise)


def flat_wandering(rng: np.random.Generator) -> Series:
    return Series(np.clip(0.9 + wander(rng, 200), 0.82, 1.0), 0)


def slowly_rising(rng: np.random.Generator) -> Series:
    return Series(np.linspace(0.5, 0.9, 400)[:300], 300)


def observe(rng: np.random.Generator, p: float) -> tuple[float, float]:
    """One step: (rate over 16 completions, share of the 4 groups whose completions differ)."""
    hits = rng.random((GROUPS, GROUP_SIZE)) < p
    per_group = hits.sum(axis=1)
    learnable = np.count_nonzero((per_group > 0) & (per_group < GROUP_SIZE)) / GROUPS
    return float(hits.mean()), learnable


# ---------------------------------------------------------------- the detectors


def detectors(base: PlateauSpec) -> dict[str, PlateauSpec | None]:
    """The anchor (None), every test with the policy's settings, and variants worth comparing with them."""
    out: dict[str, PlateauSpec | None] = {ANCHOR: None}
    for test in PlateauTest:
        metric = "learnable_group_ratio" if test is PlateauTest.LEARNING_EXHAUSTED else "extraction_rate"
        out[test.value] = replace(base, test=test, metric=metric)
    longer = 2 * base.window
    out[f"trend, window {longer}"] = replace(base, test=PlateauTest.TREND, window=longer)
    out[f"mann_kendall, window {longer}"] = replace(base, test=PlateauTest.MANN_KENDALL, window=longer)
    out["trend, noise_multiplier 2"] = replace(base, test=PlateauTest.TREND, noise_multiplier=2.0)
    return out


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


# ---------------------------------------------------------------- the experiment


@dataclass
class Outcome:
    false_plateau: list[bool]  # per series: any plateau verdict while still rising
    rising_verdicts: list[tuple[int, int]]  # per series: (plateau verdicts, steps judged) while still rising
    delay: list[int | None]


def run_scenario(make: Callable[[np.random.Generator], Series], found: dict[str, PlateauSpec | None],
                 base: PlateauSpec, series: int, seed: int) -> dict[str, Outcome]:
    """Every detector on the same draws; tests that read the same metric over the same length share one window."""
    outcomes = {name: Outcome([], [], []) for name in found}
    keys = {name: (spec.metric, values_needed(spec)) for name, spec in found.items() if spec is not None}
    for index in range(series):
        rng = np.random.default_rng([seed, index])
        s = make(rng)
        windows = {key: Window(key[1]) for key in set(keys.values())}
        keras = Keras(base.patience, base.min_delta)
        verdicts = dict.fromkeys(found, 0)
        delay: dict[str, int | None] = dict.fromkeys(found)
        active = set(found)
        for t, p in enumerate(s.p):
            rate, learnable = observe(rng, float(p))
            for key, window in windows.items():
                windows[key] = window.push(learnable if key[0] == "learnable_group_ratio" else rate)
            for name in list(active):
                spec = found[name]
                if spec is None:
                    plateau = keras.step(rate)
                else:
                    plateau = run_test(spec, windows[keys[name]], COMPLETIONS, True).plateaued
                if plateau:
                    if t < s.rise_end:
                        verdicts[name] += 1
                    else:
                        delay[name] = t - s.rise_end
                        active.discard(name)
            if not active:
                break
        for name in found:
            outcomes[name].false_plateau.append(verdicts[name] > 0)
            outcomes[name].rising_verdicts.append((verdicts[name], s.rise_end))
            outcomes[name].delay.append(delay[name])
    return outcomes


def summary(delays: list[int | None]) -> tuple[str, str]:
    found = sorted(d for d in delays if d is not None)
    missed = 1 - len(found) / len(delays)
    if not found:
        return "-", f"{missed:.0%}"
    return f"{statistics.median(found):.0f} / {found[int(0.9 * (len(found) - 1))]:.0f}", f"{missed:.0%}"


def print_table(base: PlateauSpec, results: dict[str, dict[str, Outcome]], series: int) -> None:
    print(f"\nplateau tests, window {base.window} (patience {base.patience}, min_delta {base.min_delta}, epsilon "
          f"{base.epsilon}, noise_multiplier {base.noise_multiplier}, alpha {base.alpha}, max_cv {base.max_cv}, "
          f"min_learnable {base.min_learnable}); {series} series per scenario, 16 completions a step")
    head = ("test", "rise+flat: false", "per step", "delay med/p90", "missed", "flat 0.9: delay med/p90",
            "missed", "slow rise: false", "per step")
    rows = []
    for name in results["rising"]:
        rising, flat, slow = results["rising"][name], results["flat"][name], results["slow"][name]
        rows.append((
            name + (" (anchor)" if name == ANCHOR else ""),
            f"{np.mean(rising.false_plateau):.1%}",
            per_step(rising),
            *summary(rising.delay),
            *summary(flat.delay),
            f"{np.mean(slow.false_plateau):.1%}",
            per_step(slow),
        ))
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  ".join(str(cell).rjust(w) if i else str(cell).ljust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    print("false = share of series with any plateau verdict while still rising; per step = share of rising steps "
          "with one;\ndelay in steps (median / 90th percentile) after the rise ends (flat: from the first step); "
          "missed = no verdict within the series")


def per_step(outcome: Outcome) -> str:
    verdicts = sum(v for v, _ in outcome.rising_verdicts)
    steps = sum(n for _, n in outcome.rising_verdicts)
    return f"{verdicts / steps:.1%}" if steps else "-"


# ---------------------------------------------------------------- decide() at window 1,000


def decide_timing(policy_path: Path, window: int, calls: int, seed: int) -> Timing:
    policy = load(policy_path, overrides=[f"metrics.window={window}", f"plateau.window={window}",
                                          f"plateau.patience={window - 1}"])
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


@dataclass(frozen=True)
class Timing:
    wall: list[float]
    cpu: list[float]
    windows: int

    @staticmethod
    def quantile(values: list[float], q: float) -> float:
        return values[int(q * (len(values) - 1))]

    def line(self, name: str, values: list[float]) -> str:
        return (f"  {name:5s} median {statistics.median(values) * 1e3:.3f} ms, p90 {self.quantile(values, 0.9) * 1e3:.3f} ms, "
                f"p99 {self.quantile(values, 0.99) * 1e3:.3f} ms")


def test_timings(window: int) -> Iterator[tuple[str, float]]:
    rng = np.random.default_rng(0)
    values = (rng.binomial(COMPLETIONS, 0.9, 3 * window) / COMPLETIONS).tolist()
    full = Window.of(window, values)
    yield "Window.push", _time(lambda: full.push(0.5))
    for test in PlateauTest:
        spec = PlateauSpec("extraction_rate", test, window=window, patience=window - 1)
        yield f"run_test {test.value}", _time(lambda spec=spec: run_test(spec, full, COMPLETIONS, True))  # type: ignore[misc]


def _time(call: Callable[[], object], repeat: int = 300) -> float:
    best = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeat):
            call()
        best.append((time.perf_counter() - started) / repeat)
    return min(best)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--policy", type=Path, default=REPO / "policies" / "default.toml")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)

    policy: Policy = load(args.policy)
    base = next(spec for phase in policy.phases for spec in phase.plateau if spec.test is PlateauTest.TREND)
    started = time.perf_counter()
    found = detectors(base)
    results = {
        "rising": run_scenario(rising_then_flat, found, base, args.series, args.seed),
        "flat": run_scenario(flat_wandering, found, base, args.series, args.seed + 1),
        "slow": run_scenario(slowly_rising, found, base, args.series, args.seed + 2),
    }
    print_table(base, results, args.series)
    print(f"(simulation took {time.perf_counter() - started:.0f} s)")

    timing = decide_timing(args.policy, 1000, args.calls, args.seed)
    median = statistics.median(timing.cpu)
    print(f"\ndecide() at window 1,000 ({args.policy.name}, {timing.windows} full windows, {args.calls} calls; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(timing.line("cpu", timing.cpu))
    print(timing.line("wall", timing.wall))
    print(f"  target < 1 ms (median CPU time of one call): {'met' if median < 1e-3 else 'NOT MET'}")
    for name, seconds in test_timings(1000):
        print(f"  {name:28s} {seconds * 1e6:7.1f} us at window 1,000")
    return 0 if median < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
