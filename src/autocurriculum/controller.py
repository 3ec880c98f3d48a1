"""The decision core: decide(policy, plan, state, observation, requests, eval) -> Decision. Pure.

Why pure: a curriculum switch is the one thing this daemon does that cannot be undone cheaply, so
the rule that makes it must be testable by building a state, stepping once and asserting, must
survive restarts exactly (the state is frozen data with `to_json`/`from_json`), and must be
replayable over a recorded metrics log to explain any switch after the fact. All side effects
(swapping the stream's mixture or the learner's reward functions, acknowledging operator requests)
belong to the daemon, which applies the returned Action at a step boundary.

This module is decide() itself and the public face of its parts, re-exported here:
- vocabulary.py: action kinds, reasons, alert names (shared with the exporter and the logs);
- controller_state.py: the frozen state, its versioned storage form, the decision records, moves;
- checks.py: windows, criteria, plateau tests, post-switch guards, collapse, alerts;
- controller_requests.py: operator requests (advance, set, hold, resume).

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
from collections.abc import Sequence
from dataclasses import replace

from autocurriculum.checks import (
    COLLAPSE_EMPTY_RATE,
    GUARD_Z,
    collapse_distinct_floor,
    collapse_in_window,
    completions_per_step,
    criteria_status,
    eval_window_sizes,
    guard_status,
    judge_guard,
    needs_phase1,
    observation_alerts,
    plateau_status,
    status_fields,
    window_sizes,
)
from autocurriculum.controller_requests import apply_request
from autocurriculum.controller_state import (
    STATE_SCHEMA_VERSION,
    Action,
    ControllerState,
    Decision,
    GuardLevel,
    Judgement,
    OperatorResult,
    StateFormatError,
    Transition,
    guard_level,
    initial_state,
    move,
    push_windows,
)
from autocurriculum.observation import StepObservation
from autocurriculum.override import Command, OperatorRequest
from autocurriculum.plan import ExitGate, Factor, Plan
from autocurriculum.spec import BudgetAction, Policy
from autocurriculum.vocabulary import (
    ALERT_BUDGET,
    ALERT_COLLAPSE,
    ALERT_HOLD,
    ALERT_NO_VARIANCE,
    ALERT_NONFINITE_METRICS,
    ALERT_NONFINITE_REWARDS,
    ALERT_REGRESSION,
    AUTOMATIC_ADVANCES,
    ActionKind,
    Reason,
)

__all__ = [
    "ALERT_BUDGET",
    "ALERT_COLLAPSE",
    "ALERT_HOLD",
    "ALERT_NONFINITE_METRICS",
    "ALERT_NONFINITE_REWARDS",
    "ALERT_NO_VARIANCE",
    "ALERT_REGRESSION",
    "AUTOMATIC_ADVANCES",
    "COLLAPSE_EMPTY_RATE",
    "GUARD_Z",
    "STATE_SCHEMA_VERSION",
    "Action",
    "ActionKind",
    "ControllerState",
    "Decision",
    "GuardLevel",
    "Judgement",
    "OperatorResult",
    "Reason",
    "StateFormatError",
    "Transition",
    "collapse_distinct_floor",
    "collapse_in_window",
    "completions_per_step",
    "criteria_status",
    "decide",
    "eval_window_sizes",
    "guard_level",
    "guard_status",
    "initial_state",
    "judge_guard",
    "needs_phase1",
    "observation_alerts",
    "plateau_status",
    "status_fields",
    "window_sizes",
]


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
        windows = push_windows(windows, sizes, observation.metrics)
    if not in_grace and eval_observation is not None:
        eval_windows = push_windows(eval_windows, eval_window_sizes(plan), eval_observation.metrics)
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
        applied = apply_request(policy, plan, state, request)
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
            state, action = move(policy, plan, state, step_to, Reason.OPERATOR_SET)
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
        state, action = move(policy, plan, state, judgement.from_step, Reason.ROLLBACK_REGRESSION, ActionKind.ROLLBACK)
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
        history=(*state.history, Transition(state.step, here, here, kind.value, reason.value)),
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
    state, action = move(policy, plan, state, target, why)
    return state, action, why
