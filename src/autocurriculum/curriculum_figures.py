"""The controller's figures of one step as flat scalars: what TensorBoard shows beside Tunix's loss.

Why a flat view: a TensorBoard (or W&B) user reads scalars by tag. The metrics-log line
(runlog.metrics_record) nests its figures; this turns one line into `name -> float`, the daemon
hands them to the trainer (`Trainer.log_figures`), and the Tunix session writes them as
`curriculum/train/<name>` into the event files Tunix's own figures go to. Built from the line the
daemon has just written, so TensorBoard and metrics.jsonl can never disagree; pure (no JAX, no
TensorBoard), so it is tested without either.

The names (all 0/1 flags are 1.0 when true):
- `phase_index` (0-based, in the policy's order of [[phases]]), `plan_step` (0-based, as
  metrics.jsonl's `plan_step`), `hold`, `rollbacks`;
- `transition` (1.0 at a step that wrote a transitions.jsonl line) and `transitions` (how many the
  run has written up to this step);
- `criteria/<metric>/value`, `.../threshold`, `.../holds` for each criterion of the current phase;
- `plateau/<metric>/statistic`, `.../bound`, `.../plateaued` for each plateau test;
- `alert/<name>` for every alert the controller raises (0.0 when it is not raised);
- `<metric>`: the step's observed metrics under their metrics.jsonl names (extraction_rate,
  accuracy, ...), and `eval/<metric>` the held-out figures of a step that was evaluated (written in
  Tunix's eval mode, `curriculum/eval/<metric>`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from autocurriculum.policy import Plan
from autocurriculum.vocabulary import ALERT_CHECKPOINT_FAILED, ALERT_HOLD, EXPORTED_ALERTS, ActionKind

# the alerts a metrics-log line can carry (a failed checkpoint is the daemon's, not in the line)
EVAL_PREFIX = "eval/"  # a held-out figure's name begins with it
STEP_ALERTS = tuple(alert for alert in EXPORTED_ALERTS if alert != ALERT_CHECKPOINT_FAILED)


def phase_order(plan: Plan) -> dict[str, int]:
    """Phase name -> its 0-based index, in the order the plan's steps first reach each phase."""
    order: dict[str, int] = {}
    for step in plan:
        order.setdefault(step.phase, len(order))
    return order


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _metrics(prefix: str, metrics: Mapping[str, object]) -> dict[str, float]:
    figures: dict[str, float] = {}
    for name, value in metrics.items():
        number = _number(value)
        if number is not None:
            figures[f"{prefix}{name}"] = number
    return figures


def step_figures(record: Mapping[str, Any], *, phase_index: Mapping[str, int], transitions: int) -> dict[str, float]:
    """The figures of one metrics-log line; `transitions`: the run's transitions.jsonl lines so far."""
    decision = record.get("decision") or {}
    figures: dict[str, float] = {
        "phase_index": float(phase_index[str(record["phase"])]),
        "plan_step": float(record["plan_step"]),
        "hold": 1.0 if record.get("hold") else 0.0,
        "rollbacks": float(record.get("rollbacks", 0)),
        "transition": 0.0 if decision.get("action", ActionKind.NONE.value) == ActionKind.NONE.value else 1.0,
        "transitions": float(transitions),
    }
    for metric, criterion in dict(record.get("criteria") or {}).items():
        for field in ("value", "threshold", "holds"):
            number = _number(criterion.get(field))
            if number is not None:
                figures[f"criteria/{metric}/{field}"] = number
    for metric, status in dict(record.get("plateau") or {}).items():
        fields = ("statistic", "bound", "plateaued") if status.get("ready", True) else ("bound", "plateaued")
        for field in fields:
            number = _number(status.get(field))
            if number is not None:
                figures[f"plateau/{metric}/{field}"] = number
    raised = set(record.get("alerts") or ())
    if record.get("hold"):
        raised.add(ALERT_HOLD)
    figures.update({f"alert/{alert}": 1.0 if alert in raised else 0.0 for alert in STEP_ALERTS})
    figures.update(_metrics("", dict((record.get("observation") or {}).get("metrics") or {})))
    evaluation = record.get("eval")
    if evaluation:
        figures.update(_metrics(EVAL_PREFIX, dict(evaluation.get("metrics") or {})))
    return figures
