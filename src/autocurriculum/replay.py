"""Replay: rerun decide() over a recorded metrics log and show (and check) every transition.

Why: decide() is pure and the metrics log records each step's inputs (observation, held-out
figures, operator requests; runlog.py), so replaying a log through the same policy must reproduce
the run's decisions exactly. That makes a run auditable after the fact ("why did it switch at step
212?"), shows where a changed policy would have switched on a recorded run before it is tried on a
real one, and the plot puts the watched metrics, the plan steps and the switches on one page.

`replay` and `plot` are the core (no printing); `replay_file` is what `autocurriculum replay` runs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from autocurriculum import runlog
from autocurriculum.controller import ActionKind, Decision, decide, initial_state
from autocurriculum.exits import EX_DATAERR, EX_MISMATCH, EX_NOINPUT, EX_OK
from autocurriculum.json_values import as_int, as_mapping, as_sequence
from autocurriculum.observation import ACCURACY, EXTRACTION_RATE, REFUSAL_RATE, STRICT_COMPLIANCE, StepObservation
from autocurriculum.override import OperatorRequest
from autocurriculum.policy import Plan, Policy, expand_plan

WATCHED = (EXTRACTION_RATE, STRICT_COMPLIANCE, REFUSAL_RATE, ACCURACY)
COMPARED = ("action", "reason", "from_step", "to_step", "factor")  # what must match the recorded decision


class ReplayError(ValueError):
    """A metrics-log line replay cannot read; names the line and the field."""


@dataclass(frozen=True, slots=True)
class Replayed:
    """One replayed step: the decision replay reached, and the one the run logged (if any)."""

    step: int
    decision: Decision
    recorded: Mapping[str, object] | None

    @property
    def matches(self) -> bool:
        if self.recorded is None:
            return True
        mine = self.decision.to_json()
        return all(mine[key] == self.recorded.get(key) for key in COMPARED if key in self.recorded)


@dataclass(frozen=True, slots=True)
class TransitionRow:
    """A step where the replayed controller acted (switch, rollback, hold, resume, done)."""

    step: int
    action: str
    reason: str
    factor: str
    from_step: int
    to_step: int
    from_label: str
    to_label: str
    evidence: Mapping[str, object]
    matches_log: bool

    @property
    def moved(self) -> bool:
        return self.from_step != self.to_step


def _parse(number: int, record: Mapping[str, object]) -> tuple[int, StepObservation, StepObservation | None,
                                                               list[OperatorRequest]]:
    field = "step"
    try:
        step = as_int(record["step"])
        field = "observation"
        observation = StepObservation.from_json(as_mapping(record["observation"]))
        field = "eval"
        raw_eval = record.get("eval")
        evaluation = StepObservation.from_json(as_mapping(raw_eval)) if raw_eval else None
        field = "requests"
        requests = [OperatorRequest.from_json(as_mapping(r)) for r in as_sequence(record.get("requests") or ())]
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ReplayError(f"record {number} (step {record.get('step', '?')}): field {field!r} is unreadable: "
                          f"{type(error).__name__}: {error}") from None
    return step, observation, evaluation, requests


def replay_steps(policy: Policy, plan: Plan, records: Iterable[Mapping[str, object]]) -> list[Replayed]:
    """decide() over every record, from the initial state, exactly as the daemon called it."""
    state = initial_state(plan)
    out = []
    for number, record in enumerate(records, start=1):
        step, observation, evaluation, requests = _parse(number, record)
        decision = decide(policy, plan, state, observation, requests, evaluation)
        state = decision.state
        recorded = record.get("decision")
        out.append(Replayed(step, decision, recorded if isinstance(recorded, Mapping) else None))
    return out


def transitions(plan: Plan, rows: Sequence[Replayed]) -> list[TransitionRow]:
    return [
        TransitionRow(
            step=row.step,
            action=row.decision.action.kind.value,
            reason=row.decision.reason.value,
            factor=row.decision.action.factor.value,
            from_step=row.decision.action.from_step,
            to_step=row.decision.action.to_step,
            from_label=plan[row.decision.action.from_step].label,
            to_label=plan[row.decision.action.to_step].label,
            evidence=row.decision.evidence,
            matches_log=row.matches,
        )
        for row in rows
        if row.decision.action.kind is not ActionKind.NONE
    ]


def replay(policy: Policy, plan: Plan, records: Iterable[Mapping[str, object]]) -> list[TransitionRow]:
    """The transitions decide() makes over a recorded metrics log (see `replay_steps` for every step)."""
    return transitions(plan, replay_steps(policy, plan, records))


# ---------------------------------------------------------------- the command


def describe(row: TransitionRow) -> list[str]:
    """A transition and the evidence behind it, as `autocurriculum replay` prints it."""
    lines = [f"step {row.step:5d}: {row.action:12s} {row.from_label} -> {row.to_label} ({row.reason})"]
    for metric, raw in as_mapping(row.evidence.get("criteria") or {}).items():
        status = as_mapping(raw)
        lines.append(f"             criterion {metric} {status['comparison']} {status['threshold']}: "
                     f"{status['value']} {'holds' if status['holds'] else 'fails'}")
    for metric, raw in as_mapping(row.evidence.get("plateau") or {}).items():
        status = as_mapping(raw)
        lines.append(f"             plateau {metric} ({status['test']}): {status['statistic']} vs {status['bound']} "
                     f"{'plateaued' if status['plateaued'] else 'moving' if status['ready'] else 'not ready'}")
    for metric, raw in as_mapping(row.evidence.get("guards") or {}).items():
        status = as_mapping(raw)
        lines.append(f"             guard {metric}: before {status['before']} now {status['now']} drop {status['drop']} "
                     f"bound {status['bound']}{' REGRESSED' if status['regressed'] else ''}")
    if row.evidence.get("hold_reason"):
        lines.append(f"             hold: {row.evidence['hold_reason']}")
    return lines


def replay_file(policy: Policy, metrics: Path, plot_path: Path | None) -> int:
    """`autocurriculum replay`: print each transition with its evidence; exit 1 when the log disagrees."""
    plan = expand_plan(policy)
    try:
        records = list(runlog.read_lines(metrics))
    except OSError as error:
        print(f"autocurriculum replay: {metrics}: cannot read: {error.strerror or error}", file=sys.stderr)
        return EX_NOINPUT
    except ValueError as error:
        print(f"autocurriculum replay: {error}", file=sys.stderr)
        return EX_DATAERR
    try:
        rows = replay_steps(policy, plan, records)
    except ReplayError as error:
        print(f"autocurriculum replay: {metrics}: {error}", file=sys.stderr)
        return EX_DATAERR
    mismatches = [row for row in rows if not row.matches]
    for row in mismatches:
        mine = row.decision.to_json()
        logged = as_mapping(row.recorded)
        print(f"step {row.step:5d}: MISMATCH replay decided {mine['action']} ({mine['reason']}, "
              f"{mine['from_step']} -> {mine['to_step']}); the run logged {logged.get('action')} "
              f"({logged.get('reason')}, {logged.get('from_step')} -> {logged.get('to_step')})")
    found = transitions(plan, rows)
    for transition in found:
        print("\n".join(describe(transition)))
    final = plan[rows[-1].decision.state.plan_step].label if rows else plan[0].label
    print(f"{len(rows)} steps replayed, {len(found)} actions, ends in {final}; "
          f"{len(mismatches)} mismatches with the recorded decisions")
    if plot_path is not None:
        plot(records, found, plot_path, first_label=plan[0].label)
        print(f"plot written to {plot_path}")
    return EX_OK if not mismatches else EX_MISMATCH


# ---------------------------------------------------------------- the plot


def plot(records: Sequence[Mapping[str, object]], transitions: Sequence[TransitionRow], out_png: Path,
         first_label: str = "") -> None:
    """Watched metrics over steps, a shaded band per plan-step visit, a marker per switch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [as_int(r["step"]) for r in records]
    figure, axis = plt.subplots(figsize=(11, 5))
    colors = plt.cm.Pastel1.colors  # type: ignore[attr-defined]  # typed as a Colormap; Pastel1 is a ListedColormap
    moves = [t for t in transitions if t.moved]
    first, last = (steps[0] - 1, steps[-1]) if steps else (0, 1)
    label = moves[0].from_label if moves else first_label
    index = moves[0].from_step if moves else 0
    start = first
    for end, move in [(m.step, m) for m in moves] + [(last, None)]:
        axis.axvspan(start, end, color=colors[index % len(colors)], alpha=0.6, lw=0)
        axis.text((start + end) / 2, 1.02, label, ha="center", fontsize=8)
        if move is not None:
            color, ls = ("firebrick", ":") if move.action == ActionKind.ROLLBACK.value else ("black", "--")
            axis.axvline(end, lw=1, color=color, ls=ls)
            axis.text(end, 0.03, f"{move.factor}: {move.reason}", fontsize=6, ha="right", va="bottom", rotation=90)
            start, label, index = end, move.to_label, move.to_step
    markers = {ActionKind.HOLD.value: "v", ActionKind.RESUME.value: "^", ActionKind.DONE.value: "*"}
    for t in transitions:
        if not t.moved and t.action in markers:
            axis.plot([t.step], [1.04], marker=markers[t.action], color="black", ls="none")
    for name in WATCHED:
        points = [(s, as_mapping(as_mapping(r["observation"])["metrics"]).get(name)) for s, r in zip(steps, records)]
        points = [(s, v) for s, v in points if v is not None]
        if points:
            xs, ys = zip(*points)
            axis.plot(xs, ys, label=name, lw=1)
    axis.set_xlim(first, last)
    axis.set_ylim(-0.02, 1.08)
    axis.set_xlabel("training step")
    axis.set_ylabel("share of completions")
    axis.legend(loc="lower right", fontsize=8)
    axis.set_title("autocurriculum replay: watched metrics, plan steps and switches")
    figure.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_png, dpi=110)
    plt.close(figure)
