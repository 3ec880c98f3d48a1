"""Replay: rerun decide() over a recorded metrics log and show (and check) every transition.

decide() is pure, and the metrics log records each step's inputs (observation, held-out figures,
operator requests), so replaying a log through the same policy must reproduce the run's decisions
exactly. That makes a run auditable after the fact ("why did it switch at step 212?"), and lets a
policy change be tried on a recorded run before it is tried on a real one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from autocurriculum import runlog
from autocurriculum.controller import ActionKind, Decision, decide, initial_state
from autocurriculum.observation import StepObservation
from autocurriculum.override import OperatorRequest
from autocurriculum.policy import Plan, Policy, expand_plan

WATCHED = ("extraction_rate", "strict_compliance", "refusal_rate", "accuracy")


@dataclass(frozen=True)
class Replayed:
    step: int
    decision: Decision
    recorded: Mapping[str, object] | None  # the decision the run logged, if any

    @property
    def matches(self) -> bool:
        if self.recorded is None:
            return True
        mine = self.decision.to_json()
        return all(mine[k] == self.recorded.get(k) for k in ("action", "reason", "from_step", "to_step"))


def replay(policy: Policy, plan: Plan, records: Iterable[Mapping[str, object]]) -> list[Replayed]:
    state = initial_state(plan)
    out = []
    for record in records:
        observation = StepObservation.from_json(record["observation"])  # type: ignore[arg-type]
        evaluation = StepObservation.from_json(record["eval"]) if record.get("eval") else None  # type: ignore[arg-type]
        requests = [OperatorRequest.from_json(r) for r in record.get("requests", [])]  # type: ignore[union-attr]
        decision = decide(policy, plan, state, observation, requests, evaluation)
        state = decision.state
        out.append(Replayed(int(record["step"]), decision, record.get("decision")))  # type: ignore[arg-type]
    return out


def replay_file(policy: Policy, metrics: Path, plot: Path | None) -> int:
    """`autocurriculum replay`: print transitions with evidence; exit 1 when the log disagrees."""
    plan = expand_plan(policy)
    try:
        records = list(runlog.read_lines(metrics))
    except (OSError, ValueError) as error:
        print(f"autocurriculum: {error}", file=sys.stderr)
        return 66  # EX_NOINPUT
    rows = replay(policy, plan, records)
    mismatches = 0
    for row in rows:
        action = row.decision.action
        if not row.matches:
            mismatches += 1
            print(f"step {row.step:5d}: MISMATCH replay says {row.decision.to_json()['action']} "
                  f"({row.decision.reason.value}), the run logged {row.recorded}")
        if action.kind is ActionKind.NONE:
            continue
        criteria = row.decision.evidence.get("criteria", {})
        plateau = row.decision.evidence.get("plateau", {})
        print(f"step {row.step:5d}: {action.kind.value:12s} {plan[action.from_step].label} -> {plan[action.to_step].label} "
              f"({row.decision.reason.value})")
        for metric, status in dict(criteria).items():
            print(f"             criterion {metric} {status['comparison']} {status['threshold']}: {status['value']}")
        for metric, status in dict(plateau).items():
            print(f"             plateau {metric} ({status['test']}): {status['statistic']} vs {status['bound']}")
    print(f"{len(rows)} steps replayed, {sum(r.decision.action.kind is not ActionKind.NONE for r in rows)} actions, "
          f"{mismatches} mismatches with the recorded decisions")
    if plot is not None:
        draw(plan, records, rows, plot)
        print(f"plot written to {plot}")
    return 0 if mismatches == 0 else 1


def draw(plan: Plan, records: list[dict[str, object]], rows: list[Replayed], out: Path) -> None:
    """Watched metrics over steps, with a band per plan step and a marker per switch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [int(r["step"]) for r in records]  # type: ignore[arg-type]
    figure, axis = plt.subplots(figsize=(11, 5))
    colors = plt.cm.Pastel1.colors  # type: ignore[attr-defined]
    start = steps[0] if steps else 0
    current = 0
    for row in rows + [None]:  # type: ignore[list-item]
        end = row.step if row is not None else (steps[-1] if steps else 0)
        if row is None or row.decision.action.from_step != row.decision.action.to_step:
            axis.axvspan(start, end, color=colors[current % len(colors)], alpha=0.5, lw=0)
            axis.text((start + end) / 2, 1.02, plan[current].label, ha="center", fontsize=8)
            if row is not None:
                axis.axvline(end, color="black", lw=1, ls="--")
                current, start = row.decision.action.to_step, end
    for name in WATCHED:
        values = [r["observation"]["metrics"].get(name) for r in records]  # type: ignore[index]
        points = [(s, v) for s, v in zip(steps, values) if v is not None]
        if points:
            axis.plot(*zip(*points), label=name, lw=1)
    axis.set_ylim(0, 1.08)
    axis.set_xlabel("training step")
    axis.set_ylabel("share of completions")
    axis.legend(loc="lower right", fontsize=8)
    axis.set_title("autocurriculum replay: watched metrics, plan steps and switches")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
