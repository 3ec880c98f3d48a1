"""The decision core: decide(policy, plan, state, observation, requests) -> Decision. Pure.

Given the controller's frozen state and one step's observations, decide returns the next state and
at most one action with its reason and the evidence behind it. Rules it enforces whatever the
inputs (property-tested):
- an action moves one plan step at most, so it changes the data mixture OR the reward set;
- no automatic advance without ALL the step's criteria AND all its plateau tests, never during the
  grace period after a switch, never while the model has collapsed (empty or identical completions)
  or the step had non-finite rewards;
- no step that brings in domains beyond the first phase's before the first phase's criteria held;
- after a switch, guarded metrics are judged against their level before it (canary analysis, as in
  Kayenta / Argo Rollouts): a regression beyond the bound that persists rolls the switch back, and
  after max_rollbacks the run holds and says why;
- operator requests are inputs: each applied exactly once in sequence order; at most one movement
  per step, so an operator `set` walks one plan step per boundary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from autocurriculum.observation import (
    DISTINCT_RATIO,
    EMPTY_RATE,
    LEARNABLE_GROUPS,
    StepObservation,
    is_rate,
)
from autocurriculum.override import Command, OperatorRequest
from autocurriculum.plateau import PlateauResult, Window, run_test
from autocurriculum.policy import ExitGate, Factor, Plan, Policy, Source

COLLAPSE_EMPTY_RATE = 0.5  # half the completions empty: the policy collapsed to EOS
COLLAPSE_DISTINCT_RATIO = 0.25  # fewer than 1 in 4 completions distinct: mode collapse


class ActionKind(StrEnum):
    NONE = "none"
    SWAP_DATA = "swap_data"
    SWAP_REWARDS = "swap_rewards"
    ROLLBACK = "rollback"
    HOLD = "hold"
    RESUME = "resume"
    DONE = "done"


class Reason(StrEnum):
    NOTHING = "nothing_to_do"
    GRACE = "grace_period"
    WAITING = "criteria_or_plateau_not_met"
    CRITERIA_AND_PLATEAU = "criteria_and_plateau"
    SETTLED = "settled"
    OPERATOR_ADVANCE = "operator_advance"
    OPERATOR_SET = "operator_set"
    OPERATOR_HOLD = "operator_hold"
    OPERATOR_RESUME = "operator_resume"
    ROLLBACK_REGRESSION = "rollback_regression"
    ROLLBACK_LIMIT_HOLD = "rollback_limit_hold"
    BUDGET_EXHAUSTED = "step_budget_exhausted"
    BUDGET_HOLD = "step_budget_exhausted_hold"
    PHASE1_NOT_DONE = "phase1_criteria_never_held"
    HELD = "held"
    BLOCKED = "blocked_by_alert"
    DONE = "terminal_criteria_and_plateau"


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    from_step: int
    to_step: int
    factor: Factor = Factor.NONE


@dataclass(frozen=True, slots=True)
class OperatorResult:
    seq: int
    command: str
    result: str  # "applied" | "rejected"
    message: str


@dataclass(frozen=True, slots=True)
class Transition:
    step: int
    from_step: int
    to_step: int
    kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class ControllerState:
    plan_step: int = 0
    steps_in_step: int = 0
    step: int = 0
    windows: Mapping[str, Window] = field(default_factory=dict)  # this plan step's rollout values
    eval_values: Mapping[str, float] = field(default_factory=dict)  # latest held-out figures
    baseline: Mapping[str, float] = field(default_factory=dict)  # guard levels before the last switch
    judging: bool = False  # a switch is under post-switch judgement
    regressed_steps: int = 0
    hold: bool = False
    hold_reason: str = ""
    last_request_seq: int = 0
    set_target: int | None = None
    rollbacks: Mapping[int, int] = field(default_factory=dict)
    phase1_done: bool = False
    done: bool = False
    nonfinite_total: int = 0
    history: tuple[Transition, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "plan_step": self.plan_step,
            "steps_in_step": self.steps_in_step,
            "step": self.step,
            "windows": {k: {"size": w.size, "values": list(w.values), "dropped": w.dropped} for k, w in self.windows.items()},
            "eval_values": dict(self.eval_values),
            "baseline": dict(self.baseline),
            "judging": self.judging,
            "regressed_steps": self.regressed_steps,
            "hold": self.hold,
            "hold_reason": self.hold_reason,
            "last_request_seq": self.last_request_seq,
            "set_target": self.set_target,
            "rollbacks": {str(k): v for k, v in self.rollbacks.items()},
            "phase1_done": self.phase1_done,
            "done": self.done,
            "nonfinite_total": self.nonfinite_total,
            "history": [[t.step, t.from_step, t.to_step, t.kind, t.reason] for t in self.history],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> ControllerState:
        windows = {
            str(k): Window(int(v["size"]), tuple(float(x) for x in v["values"]), int(v["dropped"]))
            for k, v in dict(data["windows"]).items()  # type: ignore[arg-type]
        }
        target = data.get("set_target")
        return cls(
            plan_step=int(data["plan_step"]),  # type: ignore[arg-type]
            steps_in_step=int(data["steps_in_step"]),  # type: ignore[arg-type]
            step=int(data["step"]),  # type: ignore[arg-type]
            windows=windows,
            eval_values={str(k): float(v) for k, v in dict(data["eval_values"]).items()},  # type: ignore[arg-type]
            baseline={str(k): float(v) for k, v in dict(data["baseline"]).items()},  # type: ignore[arg-type]
            judging=bool(data["judging"]),
            regressed_steps=int(data["regressed_steps"]),  # type: ignore[arg-type]
            hold=bool(data["hold"]),
            hold_reason=str(data["hold_reason"]),
            last_request_seq=int(data["last_request_seq"]),  # type: ignore[arg-type]
            set_target=None if target is None else int(target),  # type: ignore[arg-type]
            rollbacks={int(k): int(v) for k, v in dict(data["rollbacks"]).items()},  # type: ignore[arg-type]
            phase1_done=bool(data["phase1_done"]),
            done=bool(data["done"]),
            nonfinite_total=int(data["nonfinite_total"]),  # type: ignore[arg-type]
            history=tuple(Transition(int(a), int(b), int(c), str(d), str(e)) for a, b, c, d, e in data["history"]),  # type: ignore[union-attr]
        )


@dataclass(frozen=True, slots=True)
class Decision:
    state: ControllerState
    action: Action
    reason: Reason
    evidence: Mapping[str, object]
    operator_results: tuple[OperatorResult, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "action": self.action.kind.value,
            "reason": self.reason.value,
            "from_step": self.action.from_step,
            "to_step": self.action.to_step,
            "factor": self.action.factor.value,
            "evidence": dict(self.evidence),
        }


def initial_state(plan: Plan) -> ControllerState:
    del plan
    return ControllerState()


def watched_metrics(policy: Policy, plan: Plan) -> set[str]:
    names = {g.metric for g in policy.judgement.guards} | {EMPTY_RATE, DISTINCT_RATIO, LEARNABLE_GROUPS}
    for step in plan:
        names |= {c.metric for c in step.criteria} | {p.metric for p in step.plateau}
    return names


def _window_size(policy: Policy, plan: Plan) -> int:
    sizes = [policy.metrics.window] + [p.window for s in plan for p in s.plateau]
    return max(sizes)


def _new_domains(plan: Plan, index: int, policy: Policy) -> bool:
    first = plan[0].mixture.domains(policy.sources)
    return bool(plan[index].mixture.domains(policy.sources) - first)


# ---------------------------------------------------------------- judging


def criteria_status(policy: Policy, plan: Plan, state: ControllerState) -> dict[str, dict[str, object]]:
    step = plan[state.plan_step]
    status: dict[str, dict[str, object]] = {}
    for criterion in step.criteria:
        if criterion.source is Source.EVAL:
            value = state.eval_values.get(criterion.metric)
        else:
            window = state.windows.get(criterion.metric)
            full = window is not None and len(window.values) >= policy.metrics.window
            value = window.mean(policy.metrics.window) if full else None
        holds = value is not None and criterion.comparison.holds(value, criterion.threshold)
        status[criterion.metric] = {
            "value": None if value is None else round(value, 6),
            "comparison": criterion.comparison.value,
            "threshold": criterion.threshold,
            "source": criterion.source.value,
            "holds": holds,
        }
    return status


def plateau_status(policy: Policy, plan: Plan, state: ControllerState) -> dict[str, PlateauResult]:
    step = plan[state.plan_step]
    per_step = policy.training.prompts_per_step * policy.training.generations_per_prompt
    results = {}
    for spec in step.plateau:
        window = state.windows.get(spec.metric, Window(spec.window))
        results[spec.metric] = run_test(spec, window, per_step, is_rate(spec.metric))
    return results


def guard_status(policy: Policy, state: ControllerState) -> dict[str, dict[str, object]]:
    """Each guard's post-switch level against its level before the switch, noise-aware."""
    per_step = policy.training.prompts_per_step * policy.training.generations_per_prompt
    status = {}
    for guard in policy.judgement.guards:
        before = state.baseline.get(guard.metric)
        window = state.windows.get(guard.metric)
        now = window.mean(policy.metrics.window) if window is not None and window.values else None
        if before is None or now is None:
            status[guard.metric] = {"before": before, "now": now, "regressed": False}
            continue
        count = min(len(window.values), policy.metrics.window) if window is not None else 1  # type: ignore[union-attr]
        noise = 2.0 * math.sqrt(max(before * (1 - before), 1e-4) / (per_step * count))
        drop = (before - now) if guard.higher_is_better else (now - before)
        status[guard.metric] = {
            "before": round(before, 6),
            "now": round(now, 6),
            "drop": round(drop, 6),
            "bound": round(guard.max_drop + noise, 6),
            "regressed": drop > guard.max_drop + noise,
        }
    return status


def alerts_for(observation: StepObservation) -> list[str]:
    alerts = []
    empty = observation.get(EMPTY_RATE)
    distinct = observation.get(DISTINCT_RATIO)
    if (empty is not None and empty >= COLLAPSE_EMPTY_RATE) or (distinct is not None and distinct <= COLLAPSE_DISTINCT_RATIO):
        alerts.append("collapse")
    if observation.get(LEARNABLE_GROUPS) == 0.0:
        alerts.append("no_reward_variance")
    if observation.nonfinite:
        alerts.append("nonfinite_rewards")
    return alerts


def status_fields(decision: Decision) -> dict[str, object]:
    """The 'criteria', 'plateau', 'alerts', 'hold', 'rollbacks' fields of a metrics-log line."""
    evidence = decision.evidence
    return {
        "criteria": evidence.get("criteria", {}),
        "plateau": evidence.get("plateau", {}),
        "alerts": evidence.get("alerts", []),
        "hold": decision.state.hold,
        "rollbacks": sum(decision.state.rollbacks.values()),
    }


# ---------------------------------------------------------------- deciding


def _move(state: ControllerState, plan: Plan, to: int, kind: ActionKind | None, reason: Reason,
          policy: Policy) -> tuple[ControllerState, Action]:
    """Move to an ADJACENT plan step: one factor changes, the windows restart, judgement begins."""
    frm = state.plan_step
    assert abs(to - frm) == 1, "decide() moves one plan step at a time"
    factor = plan[max(frm, to)].changes
    if kind is None:
        kind = ActionKind.SWAP_DATA if factor is Factor.DATA else ActionKind.SWAP_REWARDS
    baseline = {}
    for guard in policy.judgement.guards:
        window = state.windows.get(guard.metric)
        if window is not None and window.values:
            baseline[guard.metric] = window.mean(policy.metrics.window) or 0.0
    moving_forward = to > frm
    new = replace(
        state,
        plan_step=to,
        steps_in_step=0,
        windows={},
        baseline=baseline if moving_forward else {},
        judging=moving_forward and bool(baseline),
        regressed_steps=0,
        phase1_done=state.phase1_done or (frm == 0 and moving_forward and reason in (Reason.CRITERIA_AND_PLATEAU,)),
        history=state.history + (Transition(state.step, frm, to, kind.value, reason.value),),
    )
    return new, Action(kind, frm, to, factor)


def _phase_start(plan: Plan, phase: str) -> int | None:
    for step in plan:
        if step.phase == phase:
            return step.index
    return None


def decide(
    policy: Policy,
    plan: Plan,
    state: ControllerState,
    observation: StepObservation,
    requests: Sequence[OperatorRequest] = (),
    eval_observation: StepObservation | None = None,
) -> Decision:
    size = _window_size(policy, plan)
    metrics = watched_metrics(policy, plan)
    alerts = alerts_for(observation)
    blocked = "collapse" in alerts or "nonfinite_rewards" in alerts
    windows = dict(state.windows)
    if not observation.nonfinite:  # a step with NaN rewards is counted, never judged
        for name in metrics:
            value = observation.metrics.get(name)
            if value is not None or name in windows:
                windows[name] = windows.get(name, Window(size)).push(value)
    eval_values = dict(state.eval_values)
    if eval_observation is not None:
        eval_values.update({k: v for k, v in eval_observation.metrics.items() if math.isfinite(v)})
    state = replace(
        state,
        step=state.step + 1,
        steps_in_step=state.steps_in_step + 1,
        windows=windows,
        eval_values=eval_values,
        nonfinite_total=state.nonfinite_total + observation.nonfinite,
    )
    here = state.plan_step
    current = plan[here]
    evidence: dict[str, object] = {"alerts": alerts, "steps_in_step": state.steps_in_step}
    results: list[OperatorResult] = []
    action = Action(ActionKind.NONE, here, here)
    reason = Reason.NOTHING

    # ---- operator requests, in sequence order; at most one movement per step
    for request in sorted(requests, key=lambda r: r.seq):
        if request.seq <= state.last_request_seq:
            continue
        if action.from_step != action.to_step:
            break  # the next movement waits for the next boundary: one factor per step
        command = request.command.value
        target: int | None = None
        if request.command is Command.HOLD:
            state = replace(state, hold=True, hold_reason=f"operator: {request.reason}" if request.reason else "operator")
            action, reason = Action(ActionKind.HOLD, here, here), Reason.OPERATOR_HOLD
            results.append(OperatorResult(request.seq, command, "applied", "automatic switching held"))
        elif request.command is Command.RESUME:
            state = replace(state, hold=False, hold_reason="", set_target=None)
            action, reason = Action(ActionKind.RESUME, here, here), Reason.OPERATOR_RESUME
            results.append(OperatorResult(request.seq, command, "applied", "automatic switching resumed"))
        elif request.command is Command.ADVANCE:
            target = here + 1
            if target >= len(plan):
                results.append(OperatorResult(request.seq, command, "rejected", "already at the last plan step"))
                target = None
        else:  # SET
            target = _phase_start(plan, request.phase)
            if target is None:
                names = sorted({s.phase for s in plan})
                results.append(OperatorResult(request.seq, command, "rejected",
                                              f"unknown phase {request.phase!r}; phases: {', '.join(names)}"))
        if target is not None:
            first_move = target if request.command is Command.ADVANCE else (here + (1 if target > here else -1) if target != here else here)
            if first_move != here and _new_domains(plan, first_move, policy) and not state.phase1_done:
                results.append(OperatorResult(request.seq, command, "rejected",
                                              "phase 1's criteria have not held yet: no new domains before that"))
            elif first_move == here:
                state = replace(state, set_target=None)
                results.append(OperatorResult(request.seq, command, "applied", f"already in phase {current.phase!r}"))
            else:
                why = Reason.OPERATOR_ADVANCE if request.command is Command.ADVANCE else Reason.OPERATOR_SET
                state = replace(state, set_target=target if (request.command is Command.SET and target != first_move) else None)
                state, action = _move(state, plan, first_move, None, why, policy)
                reason = why
                results.append(OperatorResult(request.seq, command, "applied",
                                              f"moving to plan step {first_move + 1} ({plan[first_move].label})"))
        state = replace(state, last_request_seq=request.seq)

    moved = action.from_step != action.to_step
    # ---- continue an operator `set` one plan step per boundary
    if not moved and state.set_target is not None and state.set_target != here:
        step_to = here + (1 if state.set_target > here else -1)
        if _new_domains(plan, step_to, policy) and not state.phase1_done:
            state = replace(state, set_target=None)
        else:
            target = state.set_target
            state, action = _move(state, plan, step_to, None, Reason.OPERATOR_SET, policy)
            state = replace(state, set_target=None if step_to == target else target)
            reason, moved = Reason.OPERATOR_SET, True

    # ---- automatic decisions
    criteria = criteria_status(policy, plan, state)
    plateaus = plateau_status(policy, plan, state)
    guards = guard_status(policy, state)
    evidence.update(
        criteria=criteria,
        plateau={k: v.to_json() for k, v in plateaus.items()},
        guards=guards,
    )
    if not moved and action.kind is ActionKind.NONE:
        in_grace = state.steps_in_step <= policy.judgement.grace_steps
        regressed = any(g["regressed"] for g in guards.values())
        if state.judging and not in_grace:
            streak = state.regressed_steps + 1 if regressed else 0
            state = replace(state, regressed_steps=streak)
            if state.steps_in_step > policy.judgement.grace_steps + policy.judgement.judge_steps:
                state = replace(state, judging=False, regressed_steps=0)
        if state.done:
            reason = Reason.DONE
        elif state.hold:
            reason = Reason.HELD
        elif in_grace:
            reason = Reason.GRACE
        elif state.judging and state.regressed_steps >= policy.judgement.persist_windows * policy.metrics.window:
            count = state.rollbacks.get(here, 0) + 1
            if count > policy.judgement.max_rollbacks:
                state = replace(state, hold=True, judging=False,
                                hold_reason=f"plan step {here + 1} regressed after {count - 1} rollbacks")
                action, reason = Action(ActionKind.HOLD, here, here), Reason.ROLLBACK_LIMIT_HOLD
            else:
                rollbacks = {**state.rollbacks, here: count}
                state = replace(state, rollbacks=rollbacks)
                state, action = _move(state, plan, here - 1, ActionKind.ROLLBACK, Reason.ROLLBACK_REGRESSION, policy)
                reason = Reason.ROLLBACK_REGRESSION
        elif blocked:
            reason = Reason.BLOCKED
        else:
            criteria_hold = all(c["holds"] for c in criteria.values())
            plateaued = all(r.plateaued for r in plateaus.values())
            if current.exit_gate is ExitGate.SETTLE:
                ready = state.steps_in_step >= policy.judgement.settle_steps and not regressed and plateaued
                why = Reason.SETTLED
            else:
                ready = criteria_hold and plateaued
                why = Reason.CRITERIA_AND_PLATEAU
            budget_out = state.steps_in_step >= current.max_steps
            if ready and current.exit_gate is ExitGate.TERMINAL:
                state, action, reason = replace(state, done=True), Action(ActionKind.DONE, here, here), Reason.DONE
            elif ready or (budget_out and current.on_budget_exhausted.value == "advance"):
                why = why if ready else Reason.BUDGET_EXHAUSTED
                if current.exit_gate is ExitGate.TERMINAL:
                    state, action, reason = replace(state, done=True), Action(ActionKind.DONE, here, here), why
                elif _new_domains(plan, here + 1, policy) and not (state.phase1_done or (here == 0 and ready)):
                    state = replace(state, hold=True, hold_reason="phase 1's criteria never held; new domains refused")
                    action, reason = Action(ActionKind.HOLD, here, here), Reason.PHASE1_NOT_DONE
                else:
                    if here == 0 and ready:
                        state = replace(state, phase1_done=True)
                    state, action = _move(state, plan, here + 1, None, why, policy)
                    reason = why
            elif budget_out:
                state = replace(state, hold=True, hold_reason=f"plan step {here + 1} used its budget of {current.max_steps} steps")
                action, reason = Action(ActionKind.HOLD, here, here), Reason.BUDGET_HOLD
            else:
                reason = Reason.WAITING
    if state.hold:
        evidence["hold_reason"] = state.hold_reason
    return Decision(state, action, reason, evidence, tuple(results))
