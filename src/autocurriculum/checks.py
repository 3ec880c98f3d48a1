"""What a decision rests on: windows, criteria, plateau tests, post-switch guards, collapse, alerts.

Pure functions of the policy, the plan and the controller state. Each returns the figures it judged
as well as its verdict, because a decision carries its evidence: the metrics log, `status` and
`replay` show why the controller did what it did. decide() (controller.py) combines them.
"""

from __future__ import annotations

import math

from autocurriculum.controller_state import (
    ControllerState,
    Decision,
    GuardLevel,
    guard_level,
)
from autocurriculum.observation import (
    DISTINCT_RATIO,
    DOMAIN_ACCURACY_PREFIX,
    DOMAIN_COMPLIANCE_PREFIX,
    EMPTY_RATE,
    LEARNABLE_GROUPS,
    StepObservation,
    is_rate,
)
from autocurriculum.plan import Plan, PlanStep
from autocurriculum.plateau import PlateauResult, Window, run_test, values_needed
from autocurriculum.spec import GuardSpec, Policy, Source
from autocurriculum.vocabulary import (
    ALERT_COLLAPSE,
    ALERT_NO_VARIANCE,
    ALERT_NONFINITE_METRICS,
    ALERT_NONFINITE_REWARDS,
)

# A collapse (docs/design.md, "Collapse": full-weight GRPO at a high learning rate emitted EOS
# first for every prompt within 15 steps) makes every reward equal and every statistic flat: the
# worst possible "plateau". These bounds flag it; a step or a window that crossed them never counts
# as meeting the criteria or as a plateau.
COLLAPSE_EMPTY_RATE = 0.5  # at least half the completions empty: collapsed to EOS

# Post-switch judgement: a guard regressed when its drop exceeds max_drop by more than this many
# standard errors of the difference of the two window means (one-sided 95%).
GUARD_Z = 1.645


# ---------------------------------------------------------------- what is watched, and how much of it


def window_sizes(policy: Policy, plan: Plan) -> dict[str, int]:
    """Each watched rollout metric's window: long enough for its criteria and every plateau test on it."""
    sizes = dict.fromkeys((EMPTY_RATE, DISTINCT_RATIO, LEARNABLE_GROUPS), policy.metrics.window)
    for guard in policy.judgement.guards:
        sizes[guard.metric] = policy.metrics.window
    for step in plan:
        for criterion in step.criteria:
            if criterion.source is Source.ROLLOUT:
                sizes[criterion.metric] = max(sizes.get(criterion.metric, 0), policy.metrics.window)
        for spec in step.plateau:
            if spec.source is Source.ROLLOUT:
                sizes[spec.metric] = max(sizes.get(spec.metric, 0), values_needed(spec))
    return sizes


def eval_window_sizes(plan: Plan) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for step in plan:
        for spec in step.plateau:
            if spec.source is Source.EVAL:
                sizes[spec.metric] = max(sizes.get(spec.metric, 0), values_needed(spec))
    return sizes


def completions_per_step(policy: Policy, step: PlanStep, metric: str) -> int:
    """How many completions one step's value of `metric` is a rate over (a domain's share for per-domain rates)."""
    total = policy.training.prompts_per_step * policy.training.generations_per_prompt
    for prefix in (DOMAIN_COMPLIANCE_PREFIX, DOMAIN_ACCURACY_PREFIX):
        if metric.startswith(prefix):
            domain = metric[len(prefix):]
            share = math.fsum(c.weight for c in step.mixture.components
                              if c.source in policy.sources and policy.sources[c.source].domain == domain)
            return max(1, round(total * share)) if share > 0 else total
    return total


def needs_phase1(policy: Policy, plan: Plan, index: int) -> bool:
    """Plan steps of phase index >= 2, or with domains beyond the first phase's, wait for phase 0's criteria."""
    step = plan[index]
    first = plan[0].mixture.domains(policy.sources)
    return step.phase_index >= 2 or bool(step.mixture.domains(policy.sources) - first)


# ---------------------------------------------------------------- status (evidence, and the metrics log)


def criteria_status(policy: Policy, plan: Plan, state: ControllerState) -> dict[str, dict[str, object]]:
    """Each criterion of the current plan step: its value (window mean or latest held-out figure) and verdict."""
    step = plan[state.plan_step]
    status: dict[str, dict[str, object]] = {}
    for criterion in step.criteria:
        if criterion.source is Source.EVAL:
            value = state.eval_values.get(criterion.metric)
        else:
            window = state.windows.get(criterion.metric)
            full = window is not None and window.count >= policy.metrics.window
            value = window.mean(policy.metrics.window) if window is not None and full else None
        holds = value is not None and criterion.comparison.holds(value, criterion.threshold)
        key = criterion.metric if criterion.metric not in status else f"{criterion.metric} [{criterion.source.value}]"
        status[key] = {
            "value": None if value is None else round(value, 6),
            "comparison": criterion.comparison.value,
            "threshold": criterion.threshold,
            "source": criterion.source.value,
            "holds": holds,
        }
    return status


def plateau_status(policy: Policy, plan: Plan, state: ControllerState) -> dict[str, PlateauResult]:
    """Each plateau test of the current plan step, keyed by metric (and test, when a metric has two)."""
    step = plan[state.plan_step]
    results: dict[str, PlateauResult] = {}
    for spec in step.plateau:
        windows = state.eval_windows if spec.source is Source.EVAL else state.windows
        window = windows.get(spec.metric) or Window(values_needed(spec))
        result = run_test(spec, window, completions_per_step(policy, step, spec.metric), is_rate(spec.metric))
        key = spec.metric if spec.metric not in results else f"{spec.metric} ({spec.test.value}, {spec.source.value})"
        results[key] = result
    return results


def judge_guard(guard: GuardSpec, before: GuardLevel, now: GuardLevel, completions: int) -> dict[str, object]:
    """One guard now against before: regressed when the drop exceeds max_drop by GUARD_Z standard errors.

    The standard error of the difference of the two window means is the larger of the binomial one
    (rates, pooled level, `completions` per step) and the one the windows' own spread shows, so GRPO
    wander beyond binomial noise does not read as a regression either.
    """
    drop = before.level - now.level if guard.higher_is_better else now.level - before.level
    empirical = math.sqrt(before.spread ** 2 / before.steps + now.spread ** 2 / now.steps)
    se = empirical
    if is_rate(guard.metric):
        pooled = (before.level * before.steps + now.level * now.steps) / (before.steps + now.steps)
        pooled = min(max(pooled, 0.0), 1.0)
        binomial = math.sqrt(pooled * (1 - pooled) / completions * (1 / before.steps + 1 / now.steps))
        se = max(se, binomial)
    bound = guard.max_drop + GUARD_Z * se
    return {
        "before": round(before.level, 6),
        "now": round(now.level, 6),
        "drop": round(drop, 6),
        "bound": round(bound, 6),
        "regressed": drop > bound,
    }


def guard_status(policy: Policy, plan: Plan, state: ControllerState) -> dict[str, dict[str, object]]:
    """Each guard's latest window against its level before the switch under judgement."""
    judgement = state.judgement
    if judgement is None:
        return {}
    status = {}
    for guard in policy.judgement.guards:
        before = judgement.baseline.get(guard.metric)
        window = state.windows.get(guard.metric)
        if before is None or window is None or window.count == 0:
            continue
        now = guard_level(window.last(policy.metrics.window).tolist())
        completions = completions_per_step(policy, plan[state.plan_step], guard.metric)
        status[guard.metric] = judge_guard(guard, before, now, completions)
    return status


def collapse_distinct_floor(policy: Policy) -> float:
    """Mode collapse: fewer distinct completions than prompts, i.e. different prompts got the very same text.

    A group whose completions are all identical is a confident model on that prompt (no variance to learn
    from, which `learnable_group_ratio` reports), not a collapse: with every group identical the ratio is
    exactly 1/generations_per_prompt, the floor, and does not trip it.
    """
    return 1.0 / policy.training.generations_per_prompt


def observation_alerts(observation: StepObservation, distinct_floor: float) -> list[str]:
    alerts = []
    if _collapsed(observation.get(EMPTY_RATE), observation.get(DISTINCT_RATIO), distinct_floor):
        alerts.append(ALERT_COLLAPSE)
    if observation.get(LEARNABLE_GROUPS) == 0.0:
        alerts.append(ALERT_NO_VARIANCE)
    if observation.nonfinite:
        alerts.append(ALERT_NONFINITE_REWARDS)
    if any(not math.isfinite(v) for v in observation.metrics.values()):
        alerts.append(ALERT_NONFINITE_METRICS)
    return alerts


def _collapsed(empty: float | None, distinct: float | None, distinct_floor: float) -> bool:
    return (empty is not None and empty >= COLLAPSE_EMPTY_RATE) or (
        distinct is not None and distinct < distinct_floor - 1e-9)


def collapse_in_window(policy: Policy, state: ControllerState) -> bool:
    """Any step of the judged window collapsed: that window can be neither a plateau nor a success."""
    k = policy.metrics.window
    empty = state.windows.get(EMPTY_RATE)
    distinct = state.windows.get(DISTINCT_RATIO)
    return bool(
        (empty is not None and empty.count and float(empty.last(k).max()) >= COLLAPSE_EMPTY_RATE)
        or (distinct is not None and distinct.count
            and float(distinct.last(k).min()) < collapse_distinct_floor(policy) - 1e-9)
    )


def status_fields(decision: Decision) -> dict[str, object]:
    """The 'criteria', 'plateau', 'alerts', 'hold', 'rollbacks' fields of a metrics-log line (runlog.py)."""
    evidence = decision.evidence
    return {
        "criteria": evidence.get("criteria", {}),
        "plateau": evidence.get("plateau", {}),
        "alerts": evidence.get("alerts", []),
        "hold": decision.state.hold,
        "rollbacks": sum(decision.state.rollbacks.values()),
    }
