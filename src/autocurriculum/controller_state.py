"""The controller's state, the records a decision is made of, and the state's storage form.

The state is frozen data: `decide()` returns a new one and never mutates the old, so a state can be
compared, replayed and written to a checkpoint as it is. Its storage form (`to_json`/`from_json`)
is a versioned record: `schema_version` says which fields it has, a state written before versions
were recorded is read as version 1 (it has the same fields), and any other version is refused with
a `StateFormatError` naming the file, rather than read into a state that would decide differently.

Two operations change the state's shape and are shared by the automatic rules and the operator's
requests: `push_windows` (an observation's values into the rolling windows) and `move` (to an
adjacent plan step: one factor changes, the windows restart, post-switch judgement may begin).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from autocurriculum.json_values import as_float, as_int, as_mapping, as_sequence
from autocurriculum.plan import Factor, Plan
from autocurriculum.plateau import Window
from autocurriculum.spec import Policy
from autocurriculum.vocabulary import AUTOMATIC_ADVANCES, ActionKind, Reason

# The storage form's version; bump it (and read the old one, or refuse it) when a field changes meaning.
STATE_SCHEMA_VERSION = 1


class StateFormatError(ValueError):
    """A stored controller state that cannot be read: malformed, or of a version this code does not read."""


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
            "schema_version": STATE_SCHEMA_VERSION,
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
    def from_json(cls, data: Mapping[str, object], file: str = "") -> ControllerState:
        """The state `to_json` wrote. A malformed or unknown-version state is a `StateFormatError`
        naming `file` (when given) and the field."""
        where = f"{file}: " if file else ""
        version = data.get("schema_version", 1)  # absent: written before versions were recorded, same fields
        if version != STATE_SCHEMA_VERSION:
            raise StateFormatError(
                f"{where}controller state has schema_version {version!r}; this autocurriculum reads version "
                f"{STATE_SCHEMA_VERSION} (and states written before versions were recorded): resume it with the "
                "autocurriculum that wrote it, or start a new run directory")
        key = "<root>"
        try:
            key = "judgement"
            raw = data.get("judgement")
            judgement = None
            if raw is not None:
                stored = as_mapping(raw)
                judgement = Judgement(
                    from_step=as_int(stored["from_step"]),
                    to_step=as_int(stored["to_step"]),
                    baseline={str(k): _stored_guard_level(v) for k, v in as_mapping(stored["baseline"]).items()},
                    windows_judged=as_int(stored["windows_judged"]),
                    regressed_windows=as_int(stored["regressed_windows"]),
                )
            key = "windows"
            windows = {str(k): Window.from_json(as_mapping(v)) for k, v in as_mapping(data["windows"]).items()}
            key = "eval_windows"
            eval_windows = {str(k): Window.from_json(as_mapping(v)) for k, v in as_mapping(data["eval_windows"]).items()}
            key = "set_target"
            target = data.get("set_target")
            key = "history"
            history = tuple(_stored_transition(t) for t in as_sequence(data["history"]))
            key = "<scalars>"
            return cls(
                plan_step=as_int(data["plan_step"]),
                steps_in_step=as_int(data["steps_in_step"]),
                step=as_int(data["step"]),
                windows=windows,
                eval_windows=eval_windows,
                eval_values={str(k): as_float(v) for k, v in as_mapping(data["eval_values"]).items()},
                judgement=judgement,
                hold=bool(data["hold"]),
                hold_reason=str(data["hold_reason"]),
                last_request_seq=as_int(data["last_request_seq"]),
                set_target=None if target is None else as_int(target),
                rollbacks={as_int(k): as_int(v) for k, v in as_mapping(data["rollbacks"]).items()},
                phase1_done=bool(data["phase1_done"]),
                done=bool(data["done"]),
                budget_alerted=bool(data["budget_alerted"]),
                nonfinite_total=as_int(data["nonfinite_total"]),
                collapse_streak=as_int(data.get("collapse_streak", 0)),
                restores=as_int(data.get("restores", 0)),
                history=history,
            )
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise StateFormatError(
                f"{where}controller state: field {key!r} is malformed: {type(error).__name__}: {error}") from None


def _stored_transition(value: object) -> Transition:
    step, frm, to, kind, reason = as_sequence(value)  # [step, from_step, to_step, kind, reason]
    return Transition(as_int(step), as_int(frm), as_int(to), str(kind), str(reason))


def _stored_guard_level(value: object) -> GuardLevel:
    stored = as_sequence(value)  # [level, spread, steps]
    return GuardLevel(as_float(stored[0]), as_float(stored[1]), as_int(stored[2]))


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


def guard_level(values: Sequence[float]) -> GuardLevel:
    n = len(values)
    level = math.fsum(values) / n
    spread = math.sqrt(math.fsum((v - level) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return GuardLevel(level, spread, n)


def move(policy: Policy, plan: Plan, state: ControllerState, to: int, reason: Reason,
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
        history=(*state.history, Transition(state.step, frm, to, kind.value, reason.value)),
    )
    return new, Action(kind, frm, to, factor)


def push_windows(windows: Mapping[str, Window], sizes: Mapping[str, int],
                 metrics: Mapping[str, float]) -> dict[str, Window]:
    """The observation's values of the watched metrics appended to their windows (new windows as needed)."""
    out = dict(windows)
    for name, size in sizes.items():
        if name in metrics:
            out[name] = out.get(name, Window(size)).push(metrics[name])
    return out
