"""The run's per-step metrics log: one JSON object per line in RUN_DIR/metrics.jsonl.

It is the daemon's record of what it saw and decided, the input of `autocurriculum replay`, and
what the exporter can be fed from. One schema, built in one place (`metrics_record`):

    {
      "schema": 1,                # METRICS_SCHEMA_VERSION; lines written before it existed have none
      "step": 12,                 # 1-based training step (= batch drawn from the stream)
      "plan_step": 0, "phase": "behaviour", "part": "",
      "time": 1764057600.1,       # unix seconds when the step's observation was complete
      "step_seconds": 0.41,       # wall time since the previous step boundary
      "controller_seconds": 0.002,  # the daemon's own time in this step: scoring the batch, and the
                                    # boundary up to writing this line (decide, apply, acks, logs)
      "observation": StepObservation.to_json(),
      "aliases": {"completions/mean_length": 31.5, "frac_reward_zero_std": 0.25, "rewards/<name>/mean": ...},
                                  # the same figures under Tunix's / TRL's names (StepObservation.tunix_aliases)
      "eval": StepObservation.to_json() | null,      # held-out figures when evaluated this step
      "tunix": {"loss": 0.1, "kl": 0.002, ...},      # Tunix's own figures when available
      "batch_ids": ["gsm8k:train:17", ...],          # the items of the step's batch
      "requests": [OperatorRequest.to_json(), ...],  # operator inputs handed to decide()
      "operator_results": [{"seq": 1, "command": "hold", "result": "applied", "message": "..."}],
      "decision": {"action": "none", "reason": "...", "from_step": 0, "to_step": 0,
                   "factor": "none", "evidence": {...}},
      "criteria": {"extraction_rate": {"value": 0.9, "comparison": ">=", "threshold": 0.95, "holds": false}},
      "plateau": {"extraction_rate": {"test": "trend", "statistic": 0.01, "plateaued": true}},
      "alerts": ["collapse", "no_reward_variance", "nonfinite_rewards"],
      "hold": false, "rollbacks": 0
    }
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from autocurriculum import controller
from autocurriculum.durable import fsync_path
from autocurriculum.observation import StepObservation
from autocurriculum.override import OperatorRequest
from autocurriculum.policy import PlanStep

METRICS_SCHEMA_VERSION = 1
METRICS_LOG = "metrics.jsonl"
TRANSITIONS_LOG = "transitions.jsonl"
EVAL_LOG = "eval.jsonl"  # held-out figures, one line per evaluation


def append_line(path: Path, record: Mapping[str, object]) -> None:
    """Append one JSON line and flush it to the kernel, so a kill -9 loses at most the line being written.

    No fsync per line: it cost more than the controller itself (benchmarks/overhead.py); a power loss
    can lose the last lines, and resume truncates the log to the checkpoint, which is fsynced.
    """
    line = json.dumps(record, separators=(",", ":"), allow_nan=False, default=_jsonable) + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()


def metrics_record(*, step: int, after: PlanStep, decision: controller.Decision, observation: StepObservation,
                   evaluation: StepObservation | None, requests: Sequence[OperatorRequest], tunix: Mapping[str, float],
                   time: float, step_seconds: float, controller_seconds: float,
                   batch_ids: Sequence[str]) -> dict[str, object]:
    """One metrics-log line: what step `step` observed and what decide() made of it (`after`: the plan step now)."""
    return {
        "schema": METRICS_SCHEMA_VERSION,
        "step": step,
        "plan_step": decision.state.plan_step,
        "phase": after.phase,
        "part": after.part,
        "time": time,
        "step_seconds": round(step_seconds, 6),
        "controller_seconds": round(controller_seconds, 6),
        "batch_ids": list(batch_ids),
        "observation": observation.to_json(),
        "aliases": observation.tunix_aliases(),
        "eval": evaluation.to_json() if evaluation is not None else None,
        "tunix": dict(tunix),
        "requests": [r.to_json() for r in requests],
        "decision": decision.to_json(),
        "operator_results": [
            {"seq": r.seq, "command": r.command, "result": r.result, "message": r.message}
            for r in decision.operator_results
        ],
        **controller.status_fields(decision),
    }


def rewrite_lines(path: Path, lines: Iterable[Mapping[str, object]]) -> None:
    """Replace the log with `lines`, durably: a crash leaves the old log or the whole new one."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line, separators=(",", ":"), allow_nan=False, default=_jsonable) + "\n")
    fsync_path(tmp)
    tmp.replace(path)
    fsync_path(path.parent)


def read_lines(path: Path) -> Iterator[dict[str, object]]:
    """Yield each complete JSON line; a torn last line (a crash mid-write) is skipped."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith("\n"):
                return
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not a JSON line: {error.msg}") from error


def _jsonable(value: object) -> object:
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
