"""Operator requests inside decide(): `advance`, `set`, `hold` and `resume`, applied or rejected.

A request is an input like an observation (override.py), applied exactly once, in sequence order,
at a step boundary. Whoever asks, the curriculum's rules hold: a request moves at most one plan step
(a `set` walks on one plan step per decision), and nothing enters a step that brings in new domains
or phase 3 before the first phase's criteria have held. Operator moves are not put under
post-switch judgement: the operator has taken responsibility for them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from autocurriculum.checks import needs_phase1
from autocurriculum.controller_state import Action, ControllerState, OperatorResult, move
from autocurriculum.override import Command, OperatorRequest
from autocurriculum.plan import Plan
from autocurriculum.spec import Policy
from autocurriculum.vocabulary import REQUEST_APPLIED, REQUEST_REJECTED, ActionKind, Reason


@dataclass(frozen=True, slots=True)
class AppliedRequest:
    state: ControllerState
    action: Action | None
    reason: Reason | None
    result: OperatorResult


def apply_request(policy: Policy, plan: Plan, state: ControllerState, request: OperatorRequest) -> AppliedRequest:
    here = state.plan_step
    command = request.command.value
    why = f" ({request.reason})" if request.reason else ""

    def rejected(message: str) -> AppliedRequest:
        return AppliedRequest(state, None, None, OperatorResult(request.seq, command, REQUEST_REJECTED, message + why))

    if request.command is Command.HOLD:
        held = replace(state, hold=True, hold_reason=f"operator hold, request {request.seq}{why}")
        return AppliedRequest(held, Action(ActionKind.HOLD, here, here), Reason.OPERATOR_HOLD,
                              OperatorResult(request.seq, command, REQUEST_APPLIED, f"automatic switching held{why}"))
    if request.command is Command.RESUME:
        message = "automatic switching resumed" if state.hold else "automatic switching was not held"
        if state.rollbacks:
            message += "; rollback counts reset"
        message += why
        resumed = replace(state, hold=False, hold_reason="", rollbacks={})
        return AppliedRequest(resumed, Action(ActionKind.RESUME, here, here), Reason.OPERATOR_RESUME,
                              OperatorResult(request.seq, command, REQUEST_APPLIED, message))
    if request.command is Command.ADVANCE:
        target = here + 1
        if target >= len(plan):
            return rejected(f"already at the last plan step ({plan[here].label})")
        if needs_phase1(policy, plan, target) and not state.phase1_done:
            return rejected(f"plan step {target + 1} ({plan[target].label}) brings in new domains or phase 3, "
                            f"and phase {plan[0].phase!r}'s criteria have not held yet")
        moved, action = move(policy, plan, replace(state, set_target=None), target, Reason.OPERATOR_ADVANCE)
        return AppliedRequest(moved, action, Reason.OPERATOR_ADVANCE,
                              OperatorResult(request.seq, command, REQUEST_APPLIED,
                                             f"moving to plan step {target + 1} ({plan[target].label}){why}"))
    # Command.SET
    found = _phase_target(plan, request.phase)
    if found is None:
        phases = ", ".join(dict.fromkeys(step.phase for step in plan))
        return rejected(f"unknown phase {request.phase!r}; the phases are: {phases}")
    target = found
    if target == here:
        return AppliedRequest(replace(state, set_target=None), None, None,
                              OperatorResult(request.seq, command, REQUEST_APPLIED, f"already in phase {request.phase!r}{why}"))
    if not state.phase1_done and any(needs_phase1(policy, plan, i) for i in _path(here, target)):
        return rejected(f"phase {request.phase!r} brings in new domains or phase 3, "
                        f"and phase {plan[0].phase!r}'s criteria have not held yet")
    first = here + (1 if target > here else -1)
    moved, action = move(policy, plan, state, first, Reason.OPERATOR_SET)
    moved = replace(moved, set_target=None if first == target else target)
    steps = abs(target - here)
    return AppliedRequest(moved, action, Reason.OPERATOR_SET,
                          OperatorResult(request.seq, command, REQUEST_APPLIED,
                                         f"moving to phase {request.phase!r} (plan step {target + 1}) one factor per step, "
                                         f"{steps} step{'s' if steps > 1 else ''}{why}"))


def _path(here: int, target: int) -> range:
    return range(here + 1, target + 1) if target > here else range(target, here)



def _phase_target(plan: Plan, phase: str) -> int | None:
    """A phase's last plan step: the phase with both its data and its rewards in effect."""
    matches = [step.index for step in plan if step.phase == phase]
    return matches[-1] if matches else None
