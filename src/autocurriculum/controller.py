"""The decision core: decide(policy, plan, state, observation, requests, eval) -> Decision. Pure.

Why pure: a curriculum switch is the one thing this daemon does that cannot be undone cheaply, so
the rule that makes it must be testable by building a state, stepping once and asserting, must
survive restarts exactly (the state is frozen data with `to_json`/`from_json`), and must be
replayable over a recorded metrics log to explain any switch after the fact. All side effects
(swapping the stream's mixture or the learner's reward functions, acknowledging operator requests)
belong to the daemon, which applies the returned Action at a step boundary.

Rules enforced whatever the inputs (property-tested in tests/test_controller.py):
- one decision moves at most one plan step, so it changes the data mixture OR the reward set: moving
  from plan step k to k+1 applies plan[k+1].changes, a rollback from k to k-1 undoes plan[k].changes;
- no automatic advance without ALL of the step's criteria (window means, or the latest held-out
  figures) AND all its plateau tests, never within `grace_steps` of a switch (observations from the
  grace period do not even enter the windows: a switch's transient is not the new level), never
  while the model has collapsed or the step's rewards were non-finite;
- a SETTLE step (the first half of a split switch) advances once settle_steps have passed, its
  guards show no regression and its plateau tests pass;
- no plan step of phase index >= 2 (or one that brings in domains beyond the first phase's) is
  entered, by anyone, before phase 0's criteria have held at least once;
- post-switch judgement (the canary analysis of Kayenta / Argo Rollouts, applied to a curriculum):
  after an automatic switch the guarded metrics are judged window by window against their level
  before the switch, with the noise of both levels taken into account; `persist_windows`
  consecutive regressed windows roll the switch back, and a step rolled back `max_rollbacks` times
  is not entered again automatically: the run holds and says why. Operator moves are not judged:
  the operator has taken responsibility for them;
- a collapse that lasts `collapse_patience` consecutive steps (empty or identical completions: a
  collapsed model gets equal rewards, so GRPO has no gradient to climb out with) asks the daemon to
  restore the newest checkpoint taken before the collapse began (`restore_checkpoint`, plan step
  unchanged, windows restarted as after a switch), at most `max_restores` times in a run; then the
  run holds and says why. A hold stops restores too;
- a plan step that used up its `max_steps` holds (once per visit, with an alert) or advances with
  reason step_budget_exhausted, as its policy says;
- operator requests are inputs, applied exactly once in sequence order; a request whose seq is not
  above the last one seen is a duplicate and ignored. At most one plan-step move per decision:
  a movement request arriving after a move waits (unacknowledged) for the next boundary, and `set`
  walks one plan step per decision. `hold` stops automatic switching (including rollbacks); operator
  advance and set still work.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from autocurriculum.observation import (
    DISTINCT_RATIO,
    DOMAIN_ACCURACY_PREFIX,
    DOMAIN_COMPLIANCE_PREFIX,
    EMPTY_RATE,
    LEARNABLE_GROUPS,
    StepObservation,
    is_rate,
)
from autocurriculum.override import Command, OperatorRequest
from autocurriculum.plateau import PlateauResult, Window, run_test, values_needed
from autocurriculum.policy import ExitGate, Factor, GuardSpec, Plan, PlanStep, Policy, Source, BudgetAction

# A collapse (docs/design.md, "Collapse": full-weight GRPO at a high learning rate emitted EOS
# first for every prompt within 15 steps) makes every reward equal and every statistic flat: the
# worst possible "plateau". These bounds flag it; a step or a window that crossed them never counts
# as meeting the criteria or as a plateau.
COLLAPSE_EMPTY_RATE = 0.5  # at least half the completions empty: collapsed to EOS

# Post-switch judgement: a guard regressed when its drop exceeds max_drop by more than this many
# standard errors of the difference of the two window means (one-sided 95%).
GUARD_Z = 1.645

ALERT_COLLAPSE = "collapse"
ALERT_NO_VARIANCE = "no_reward_variance"
ALERT_NONFINITE_REWARDS = "nonfinite_rewards"
ALERT_NONFINITE_METRICS = "nonfinite_metrics"
ALERT_HOLD = "hold"
ALERT_BUDGET = "budget_exhausted"
ALERT_REGRESSION = "guard_regression"


class ActionKind(StrEnum):
    NONE = "none"
    SWAP_DATA = "swap_data"
    SWAP_REWARDS = "swap_rewards"
    ROLLBACK = "rollback"
    RESTORE = "restore_checkpoint"  # weights and optimizer from before a collapse; the plan step stays
    HOLD = "hold"
    RESUME = "resume"
    DONE = "done"


class Reason(StrEnum):
    NOTHING = "nothing_to_do"
    GRACE = "grace_period"
    WAITING = "criteria_or_plateau_not_met"
    REGRESSION_PENDING = "guard_regression_under_judgement"
    CRITERIA_AND_PLATEAU = "criteria_and_plateau"
    SETTLED = "settled"
    OPERATOR_ADVANCE = "operator_advance"
    OPERATOR_SET = "operator_set"
    OPERATOR_HOLD = "operator_hold"
    OPERATOR_RESUME = "operator_resume"
    ROLLBACK_REGRESSION = "rollback_regression"
    ROLLBACK_LIMIT_HOLD = "rollback_limit_hold"
    COLLAPSE_RESTORE = "collapse_restore"
    COLLAPSE_LIMIT_HOLD = "collapse_restore_limit_hold"
    BUDGET_EXHAUSTED = "step_budget_exhausted"
    BUDGET_HOLD = "step_budget_exhausted_hold"
    PHASE1_NOT_DONE = "phase1_criteria_never_held"
    HELD = "held"
    BLOCKED = "blocked_by_alert"
    DONE = "run_done"


AUTOMATIC_ADVANCES = frozenset({Reason.CRITERIA_AND_PLATEAU, Reason.SETTLED, Reason.BUDGET_EXHAUSTED})


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    from_step: int
    to_step: int
    factor: Factor = Factor.NONE
    before_step: int = 0  # RESTORE: restore a checkpoint taken before this (controller) step


@dataclass(frozen=True, slots=True)
class OperatorResult:
    seq: int
    command: str
    result: str  # "applied" | "rejected"
    message: str  # what was done, or why not


@dataclass(frozen=True, slots=True)
class Transition:
    step: int  # the controller step (decide() call) at which the plan step changed
    from_step: int
    to_step: int
    kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class GuardLevel:
    """A guarded metric's level over the last window before a switch."""

    level: float
    spread: float  # sample standard deviation of the per-step values
    steps: int


@dataclass(frozen=True, slots=True)
class Judgement:
    """A switch under post-switch judgement: guard levels before it and consecutive regressed windows."""

    from_step: int
    to_step: int
    baseline: Mapping[str, GuardLevel]
    windows_judged: int = 0
    regressed_windows: int = 0  # consecutive, reset by a window without regression


@dataclass(frozen=True, slots=True)
class ControllerState:
    plan_step: int = 0
    steps_in_step: int = 0  # decide() calls since entering the plan step
    step: int = 0  # decide() calls in all
    windows: Mapping[str, Window] = field(default_factory=dict)  # rollout values since the grace period
    eval_windows: Mapping[str, Window] = field(default_factory=dict)  # held-out values, same rule
    eval_values: Mapping[str, float] = field(default_factory=dict)  # latest held-out figures in this plan step
    judgement: Judgement | None = None
    hold: bool = False
    hold_reason: str = ""
    last_request_seq: int = 0
    set_target: int | None = None  # an operator `set` still walking toward this plan step
    rollbacks: Mapping[int, int] = field(default_factory=dict)  # plan step -> times rolled back out of it
    phase1_done: bool = False  # phase 0's criteria have held at least once
    done: bool = False
    budget_alerted: bool = False  # the budget hold fired in this visit of the plan step
    nonfinite_total: int = 0  # reward values that were NaN or infinite, over the run
    collapse_streak: int = 0  # consecutive collapsed steps up to now
    restores: int = 0  # checkpoints restored after a collapse, over the run
    history: tuple[Transition, ...] = ()

    @property
    def collapse_began(self) -> int:
        """The step (decide() call) at which the current collapse streak began, while it lasts."""
        return self.step - self.collapse_streak + 1

    def to_json(self) -> dict[str, object]:
        judgement = self.judgement
        return {
            "plan_step": self.plan_step,
            "steps_in_step": self.steps_in_step,
            "step": self.step,
            "windows": {k: w.to_json() for k, w in self.windows.items()},
            "eval_windows": {k: w.to_json() for k, w in self.eval_windows.items()},
            "eval_values": dict(self.eval_values),
            "judgement": None if judgement is None else {
                "from_step": judgement.from_step,
                "to_step": judgement.to_step,
                "baseline": {k: [g.level, g.spread, g.steps] for k, g in judgement.baseline.items()},
                "windows_judged": judgement.windows_judged,
                "regressed_windows": judgement.regressed_windows,
            },
            "hold": self.hold,
            "hold_reason": self.hold_reason,
            "last_request_seq": self.last_request_seq,
            "set_target": self.set_target,
            "rollbacks": {str(k): v for k, v in self.rollbacks.items()},
            "phase1_done": self.phase1_done,
            "done": self.done,
            "budget_alerted": self.budget_alerted,
            "nonfinite_total": self.nonfinite_total,
            "collapse_streak": self.collapse_streak,
            "restores": self.restores,
            "history": [[t.step, t.from_step, t.to_step, t.kind, t.reason] for t in self.history],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> ControllerState:
        """The state `to_json` wrote; a malformed state is a ValueError that names the field."""
        key = "<root>"
        try:
            key = "judgement"
            raw = data.get("judgement")
            judgement = None
            if raw is not None:
                judgement = Judgement(
                    from_step=int(raw["from_step"]),  # type: ignore[index]
                    to_step=int(raw["to_step"]),  # type: ignore[index]
                    baseline={str(k): GuardLevel(float(v[0]), float(v[1]), int(v[2]))
                              for k, v in dict(raw["baseline"]).items()},  # type: ignore[index]
                    windows_judged=int(raw["windows_judged"]),  # type: ignore[index]
                    regressed_windows=int(raw["regressed_windows"]),  # type: ignore[index]
                )
            key = "windows"
            windows = {str(k): Window.from_json(v) for k, v in dict(data["windows"]).items()}  # type: ignore[call-overload]
            key = "eval_windows"
            eval_windows = {str(k): Window.from_json(v) for k, v in dict(data["eval_windows"]).items()}  # type: ignore[call-overload]
            key = "set_target"
            target = data.get("set_target")
            key = "history"
            history = tuple(Transition(int(a), int(b), int(c), str(d), str(e))
                            for a, b, c, d, e in data["history"])  # type: ignore[union-attr]
            key = "<scalars>"
            return cls(
                plan_step=int(data["plan_step"]),  # type: ignore[call-overload]
                steps_in_step=int(data["steps_in_step"]),  # type: ignore[call-overload]
                step=int(data["step"]),  # type: ignore[call-overload]
                windows=windows,
                eval_windows=eval_windows,
                eval_values={str(k): float(v) for k, v in dict(data["eval_values"]).items()},  # type: ignore[call-overload]
                judgement=judgement,
                hold=bool(data["hold"]),
                hold_reason=str(data["hold_reason"]),
                last_request_seq=int(data["last_request_seq"]),  # type: ignore[call-overload]
                set_target=None if target is None else int(target),  # type: ignore[call-overload]
                rollbacks={int(k): int(v) for k, v in dict(data["rollbacks"]).items()},  # type: ignore[call-overload]
                phase1_done=bool(data["phase1_done"]),
                done=bool(data["done"]),
                budget_alerted=bool(data["budget_alerted"]),
                nonfinite_total=int(data["nonfinite_total"]),  # type: ignore[call-overload]
                collapse_streak=int(data.get("collapse_streak", 0)),  # type: ignore[call-overload]
                restores=int(data.get("restores", 0)),  # type: ignore[call-overload]
                history=history,
            )
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise ValueError(f"controller state: field {key!r} is malformed: {type(error).__name__}: {error}") from None


@dataclass(frozen=True, slots=True)
class Decision:
    state: ControllerState
    action: Action
    reason: Reason
    evidence: Mapping[str, object]  # the statistics behind the decision (criteria, plateau, guards, alerts...)
    operator_results: tuple[OperatorResult, ...] = ()

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "action": self.action.kind.value,
            "reason": self.reason.value,
            "from_step": self.action.from_step,
            "to_step": self.action.to_step,
            "factor": self.action.factor.value,
            "evidence": dict(self.evidence),
        }
        if self.action.kind is ActionKind.RESTORE:
            out["before_step"] = self.action.before_step
        return out


def initial_state(plan: Plan) -> ControllerState:
    if not plan:
        raise ValueError("the plan has no steps")
    return ControllerState()


# ---------------------------------------------------------------- what is watched, and how much of it


def window_sizes(policy: Policy, plan: Plan) -> dict[str, int]:
    """Each watched rollout metric's window: long enough for its criteria and every plateau test on it."""
    sizes = {name: policy.metrics.window for name in (EMPTY_RATE, DISTINCT_RATIO, LEARNABLE_GROUPS)}
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


def watched_metrics(policy: Policy, plan: Plan) -> set[str]:
    return set(window_sizes(policy, plan))


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


def _phase_target(plan: Plan, phase: str) -> int | None:
    """A phase's last plan step: the phase with both its data and its rewards in effect."""
    matches = [step.index for step in plan if step.phase == phase]
    return matches[-1] if matches else None


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
            value = window.mean(policy.metrics.window) if full else None  # type: ignore[union-attr]
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


def guard_level(values: Sequence[float]) -> GuardLevel:
    n = len(values)
    level = math.fsum(values) / n
    spread = math.sqrt(math.fsum((v - level) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return GuardLevel(level, spread, n)


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


# ---------------------------------------------------------------- moving


def _move(policy: Policy, plan: Plan, state: ControllerState, to: int, reason: Reason,
          kind: ActionKind | None = None) -> tuple[ControllerState, Action]:
    """Move to an ADJACENT plan step: one factor changes, the windows restart, judgement may begin."""
    frm = state.plan_step
    if abs(to - frm) != 1:
        raise AssertionError(f"decide() moves one plan step at a time (asked {frm} -> {to})")
    factor = plan[max(frm, to)].changes
    if kind is None:
        kind = ActionKind.SWAP_DATA if factor is Factor.DATA else ActionKind.SWAP_REWARDS
    judgement = None
    if to > frm and reason in AUTOMATIC_ADVANCES:
        baseline = {}
        for guard in policy.judgement.guards:
            window = state.windows.get(guard.metric)
            if window is not None and window.count:
                baseline[guard.metric] = guard_level(window.last(policy.metrics.window).tolist())
        if baseline:
            judgement = Judgement(frm, to, baseline)
    new = replace(
        state,
        plan_step=to,
        steps_in_step=0,
        windows={},
        eval_windows={},
        eval_values={},
        judgement=judgement,
        budget_alerted=False,
        history=state.history + (Transition(state.step, frm, to, kind.value, reason.value),),
    )
    return new, Action(kind, frm, to, factor)


def _push(windows: Mapping[str, Window], sizes: Mapping[str, int], metrics: Mapping[str, float]) -> dict[str, Window]:
    out = dict(windows)
    for name, size in sizes.items():
        if name in metrics:
            out[name] = out.get(name, Window(size)).push(metrics[name])
    return out


# ---------------------------------------------------------------- operator requests


@dataclass(frozen=True, slots=True)
class _Applied:
    state: ControllerState
    action: Action | None
    reason: Reason | None
    result: OperatorResult


def _apply_request(policy: Policy, plan: Plan, state: ControllerState, request: OperatorRequest) -> _Applied:
    here = state.plan_step
    command = request.command.value
    why = f" ({request.reason})" if request.reason else ""

    def rejected(message: str) -> _Applied:
        return _Applied(state, None, None, OperatorResult(request.seq, command, "rejected", message + why))

    if request.command is Command.HOLD:
        held = replace(state, hold=True, hold_reason=f"operator hold, request {request.seq}{why}")
        return _Applied(held, Action(ActionKind.HOLD, here, here), Reason.OPERATOR_HOLD,
                        OperatorResult(request.seq, command, "applied", f"automatic switching held{why}"))
    if request.command is Command.RESUME:
        message = "automatic switching resumed" if state.hold else "automatic switching was not held"
        if state.rollbacks:
            message += "; rollback counts reset"
        message += why
        resumed = replace(state, hold=False, hold_reason="", rollbacks={})
        return _Applied(resumed, Action(ActionKind.RESUME, here, here), Reason.OPERATOR_RESUME,
                        OperatorResult(request.seq, command, "applied", message))
    if request.command is Command.ADVANCE:
        target = here + 1
        if target >= len(plan):
            return rejected(f"already at the last plan step ({plan[here].label})")
        if needs_phase1(policy, plan, target) and not state.phase1_done:
            return rejected(f"plan step {target + 1} ({plan[target].label}) brings in new domains or phase 3, "
                            f"and phase {plan[0].phase!r}'s criteria have not held yet")
        moved, action = _move(policy, plan, replace(state, set_target=None), target, Reason.OPERATOR_ADVANCE)
        return _Applied(moved, action, Reason.OPERATOR_ADVANCE,
                        OperatorResult(request.seq, command, "applied",
                                       f"moving to plan step {target + 1} ({plan[target].label}){why}"))
    # Command.SET
    target = _phase_target(plan, request.phase)
    if target is None:
        phases = ", ".join(dict.fromkeys(step.phase for step in plan))
        return rejected(f"unknown phase {request.phase!r}; the phases are: {phases}")
    if target == here:
        return _Applied(replace(state, set_target=None), None, None,
                        OperatorResult(request.seq, command, "applied", f"already in phase {request.phase!r}{why}"))
    if not state.phase1_done and any(needs_phase1(policy, plan, i) for i in _path(here, target)):
        return rejected(f"phase {request.phase!r} brings in new domains or phase 3, "
                        f"and phase {plan[0].phase!r}'s criteria have not held yet")
    first = here + (1 if target > here else -1)
    moved, action = _move(policy, plan, state, first, Reason.OPERATOR_SET)
    moved = replace(moved, set_target=None if first == target else target)
    steps = abs(target - here)
    return _Applied(moved, action, Reason.OPERATOR_SET,
                    OperatorResult(request.seq, command, "applied",
                                   f"moving to phase {request.phase!r} (plan step {target + 1}) one factor per step, "
                                   f"{steps} step{'s' if steps > 1 else ''}{why}"))


def _path(here: int, target: int) -> range:
    return range(here + 1, target + 1) if target > here else range(target, here)


# ---------------------------------------------------------------- deciding


def decide(
    policy: Policy,
    plan: Plan,
    state: ControllerState,
    observation: StepObservation,
    requests: Sequence[OperatorRequest] = (),
    eval_observation: StepObservation | None = None,
) -> Decision:
    """One step boundary: fold in the observation, apply operator requests, then decide at most one move."""
    judging = policy.judgement
    steps_in = state.steps_in_step + 1
    in_grace = steps_in <= judging.grace_steps
    alerts = observation_alerts(observation, collapse_distinct_floor(policy))
    sizes = window_sizes(policy, plan)
    # a step with a non-finite reward or watched metric is counted (and alerted), never judged
    unjudgeable = bool(observation.nonfinite) or any(
        name in sizes and not math.isfinite(value) for name, value in observation.metrics.items())
    windows, eval_windows, eval_values = state.windows, state.eval_windows, state.eval_values
    if not in_grace and not observation.nonfinite:
        windows = _push(windows, sizes, observation.metrics)
    if not in_grace and eval_observation is not None:
        eval_windows = _push(eval_windows, eval_window_sizes(plan), eval_observation.metrics)
        eval_values = {**eval_values, **{k: v for k, v in eval_observation.metrics.items() if math.isfinite(v)}}
    streak = state.collapse_streak + 1 if ALERT_COLLAPSE in alerts else 0
    state = replace(state, step=state.step + 1, steps_in_step=steps_in, windows=windows, eval_windows=eval_windows,
                    eval_values=eval_values, nonfinite_total=state.nonfinite_total + observation.nonfinite,
                    collapse_streak=streak)
    here = state.plan_step
    evidence: dict[str, object] = {"steps_in_step": steps_in}
    results: list[OperatorResult] = []
    duplicates: list[int] = []
    action: Action | None = None
    reason: Reason | None = None

    # ---- operator requests, in sequence order; one plan-step move per decision
    for request in sorted(requests, key=lambda r: r.seq):
        if request.seq <= state.last_request_seq:
            duplicates.append(request.seq)
            continue
        moves = request.command in (Command.ADVANCE, Command.SET)
        if moves and action is not None and action.from_step != action.to_step:
            break  # waits, unacknowledged, for the next boundary
        applied = _apply_request(policy, plan, state, request)
        state = replace(applied.state, last_request_seq=request.seq)
        results.append(applied.result)
        if applied.action is not None and (action is None or action.from_step == action.to_step):
            action, reason = applied.action, applied.reason
    if duplicates:
        evidence["duplicate_requests"] = duplicates
    moved = action is not None and action.from_step != action.to_step

    # ---- an operator `set` walks on, one plan step per decision
    if not moved and state.set_target is not None and state.set_target != here:
        target = state.set_target
        step_to = here + (1 if target > here else -1)
        if needs_phase1(policy, plan, step_to) and not state.phase1_done:
            state = replace(state, set_target=None)
            evidence["set_abandoned"] = f"plan step {step_to + 1} needs phase {plan[0].phase!r}'s criteria to have held"
        else:
            state, action = _move(policy, plan, state, step_to, Reason.OPERATOR_SET)
            state = replace(state, set_target=None if step_to == target else target)
            reason, moved = Reason.OPERATOR_SET, True

    # ---- automatic decisions
    if not moved:
        state, auto_action, auto_reason = _automatic(policy, plan, state, in_grace, unjudgeable, alerts, evidence)
        if action is None or auto_action.kind is not ActionKind.NONE:
            action, reason = auto_action, auto_reason
    else:
        evidence.update(_statuses(policy, plan, state))
    assert action is not None and reason is not None
    if state.hold:
        alerts.append(ALERT_HOLD)
        evidence["hold_reason"] = state.hold_reason
    evidence["alerts"] = alerts
    return Decision(state, action, reason, evidence, tuple(results))


def _statuses(policy: Policy, plan: Plan, state: ControllerState) -> dict[str, object]:
    return {
        "criteria": criteria_status(policy, plan, state),
        "plateau": {k: v.to_json() for k, v in plateau_status(policy, plan, state).items()},
        "guards": guard_status(policy, plan, state),
    }


def _automatic(policy: Policy, plan: Plan, state: ControllerState, in_grace: bool, unjudgeable: bool,
               alerts: list[str], evidence: dict[str, object]) -> tuple[ControllerState, Action, Reason]:
    """What the controller does by itself this step (no operator move happened)."""
    judging = policy.judgement
    here = state.plan_step
    current = plan[here]
    stay = Action(ActionKind.NONE, here, here)
    criteria = criteria_status(policy, plan, state)
    plateaus = plateau_status(policy, plan, state)
    guards = guard_status(policy, plan, state)
    evidence.update(criteria=criteria, plateau={k: v.to_json() for k, v in plateaus.items()}, guards=guards)
    budget_out = state.steps_in_step >= current.max_steps
    if budget_out:
        alerts.append(ALERT_BUDGET)
    if state.done:
        return state, stay, Reason.DONE
    if judging.collapse_patience and state.collapse_streak >= judging.collapse_patience and not state.hold:
        evidence["collapse"] = {"streak": state.collapse_streak, "began": state.collapse_began,
                                "restores": state.restores, "max_restores": judging.max_restores}
        return _restore(policy, state)
    if in_grace:
        return state, stay, Reason.GRACE
    if unjudgeable:  # no verdict of any kind (switch, rollback, judgement window) rests on this step
        evidence["blocked"] = "non-finite rewards or metrics this step"
        return state, stay, Reason.HELD if state.hold else Reason.BLOCKED

    # post-switch judgement: one verdict per full window after the grace period
    judgement = state.judgement
    if judgement is not None:
        after = state.steps_in_step - judging.grace_steps
        if after % policy.metrics.window == 0 and guards:
            regressed = any(g["regressed"] for g in guards.values())
            judgement = replace(judgement, windows_judged=judgement.windows_judged + 1,
                                regressed_windows=judgement.regressed_windows + 1 if regressed else 0)
        evidence["judgement"] = {"switch": [judgement.from_step, judgement.to_step],
                                 "windows_judged": judgement.windows_judged,
                                 "regressed_windows": judgement.regressed_windows,
                                 "persist_windows": judging.persist_windows}
        if judgement.regressed_windows or any(g["regressed"] for g in guards.values()):
            alerts.append(ALERT_REGRESSION)
        over = after >= judging.judge_steps and judgement.regressed_windows < judging.persist_windows
        state = replace(state, judgement=None if over else judgement)

    blocked = ALERT_COLLAPSE in alerts or collapse_in_window(policy, state)
    if blocked:
        evidence["blocked"] = "collapse: empty or identical completions in the judged window"
    criteria_hold = bool(criteria) and all(c["holds"] for c in criteria.values())
    if current.phase_index == 0 and criteria_hold and not blocked and not state.phase1_done:
        state = replace(state, phase1_done=True)
    if state.hold:
        return state, stay, Reason.HELD

    judgement = state.judgement
    if judgement is not None and judgement.regressed_windows >= judging.persist_windows:
        count = state.rollbacks.get(here, 0)
        if count >= judging.max_rollbacks:
            state = replace(state, judgement=None, hold=True,
                            hold_reason=f"plan step {here + 1} ({current.label}) regressed after the switch and was "
                                        f"already rolled back {count} time(s) (max_rollbacks {judging.max_rollbacks})")
            return state, Action(ActionKind.HOLD, here, here), Reason.ROLLBACK_LIMIT_HOLD
        state = replace(state, rollbacks={**state.rollbacks, here: count + 1})
        state, action = _move(policy, plan, state, judgement.from_step, Reason.ROLLBACK_REGRESSION, ActionKind.ROLLBACK)
        return state, action, Reason.ROLLBACK_REGRESSION
    if blocked:
        return state, stay, Reason.BLOCKED

    plateaued = all(r.plateaued for r in plateaus.values())
    # a regressed judged window, or a guard regressed right now, keeps the switch from being built on
    regression_pending = judgement is not None and (
        judgement.regressed_windows > 0 or any(g["regressed"] for g in guards.values()))
    if current.exit_gate is ExitGate.SETTLE:
        guards_clear = judgement is None or (judgement.windows_judged > 0 and not regression_pending)
        ready = state.steps_in_step >= judging.settle_steps and guards_clear and plateaued
        why = Reason.SETTLED
    else:
        judged_something = bool(current.criteria) or bool(current.plateau)
        ready = judged_something and all(c["holds"] for c in criteria.values()) and plateaued and not regression_pending
        why = Reason.CRITERIA_AND_PLATEAU
    if not ready and budget_out and current.on_budget_exhausted is BudgetAction.ADVANCE:
        ready, why = True, Reason.BUDGET_EXHAUSTED
    if ready:
        if current.exit_gate is ExitGate.TERMINAL or here + 1 >= len(plan):
            return replace(state, done=True), Action(ActionKind.DONE, here, here), why
        return _advance(policy, plan, state, why)
    if budget_out and not state.budget_alerted:
        state = replace(state, hold=True, budget_alerted=True,
                        hold_reason=f"plan step {here + 1} ({current.label}) used its budget of {current.max_steps} steps")
        return state, Action(ActionKind.HOLD, here, here), Reason.BUDGET_HOLD
    return state, stay, Reason.REGRESSION_PENDING if regression_pending else Reason.WAITING


def _restore(policy: Policy, state: ControllerState) -> tuple[ControllerState, Action, Reason]:
    """Restore the last checkpoint before a lasting collapse, or hold once the restores are used up."""
    here = state.plan_step
    limit = policy.judgement.max_restores
    if state.restores >= limit:
        state = replace(state, hold=True, collapse_streak=0,
                        hold_reason=f"the model collapsed for {state.collapse_streak} steps from step "
                                    f"{state.collapse_began} after {state.restores} restore(s) (max_restores {limit}); "
                                    "resume to let it go on, or change the policy and restart from a checkpoint")
        return state, Action(ActionKind.HOLD, here, here), Reason.COLLAPSE_LIMIT_HOLD
    kind, reason = ActionKind.RESTORE, Reason.COLLAPSE_RESTORE
    began = state.collapse_began
    state = replace(
        state, steps_in_step=0, windows={}, eval_windows={}, eval_values={}, judgement=None, collapse_streak=0,
        restores=state.restores + 1,
        history=state.history + (Transition(state.step, here, here, kind.value, reason.value),),
    )
    return state, Action(kind, here, here, Factor.NONE, before_step=began), reason


def _advance(policy: Policy, plan: Plan, state: ControllerState, why: Reason) -> tuple[ControllerState, Action, Reason]:
    here = state.plan_step
    target = here + 1
    stay = Action(ActionKind.HOLD, here, here)
    if needs_phase1(policy, plan, target) and not state.phase1_done:
        state = replace(state, hold=True, hold_reason=f"plan step {target + 1} ({plan[target].label}) brings in new "
                        f"domains or phase 3, and phase {plan[0].phase!r}'s criteria never held")
        return state, stay, Reason.PHASE1_NOT_DONE
    count = state.rollbacks.get(target, 0)
    if count and count >= policy.judgement.max_rollbacks:
        state = replace(state, hold=True, hold_reason=f"plan step {target + 1} ({plan[target].label}) regressed and was "
                        f"rolled back {count} time(s) (max_rollbacks {policy.judgement.max_rollbacks}); "
                        "advance or set to enter it anyway, resume to let it be tried again")
        return state, stay, Reason.ROLLBACK_LIMIT_HOLD
    state, action = _move(policy, plan, state, target, why)
    return state, action, why
