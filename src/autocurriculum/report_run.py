"""A run directory's files, read once into one value: what the run report and its charts draw from.

The report reads only what the daemon writes (runlog.py: metrics.jsonl, transitions.jsonl,
eval.jsonl; status.json; completions.json; run.json), so it works on a finished run, a running one
or a copy of either. A directory with no step to show is a ReportError naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autocurriculum import completion_samples, runlog


class ReportError(Exception):
    """A run directory the report cannot be made from; the message names the file and what is wrong."""


@dataclass
class Run:
    """What the run directory holds, read once."""

    run_dir: Path
    steps: list[dict[str, Any]]
    transitions: list[dict[str, Any]]
    evaluations: list[dict[str, Any]]
    status: dict[str, Any] | None
    samples: dict[str, list[dict[str, Any]]]
    running_pid: int | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def last(self) -> dict[str, Any]:
        return self.steps[-1]


def load_run(run_dir: Path) -> Run:
    """Read every file of the run directory the report uses; ReportError when there is no step to show."""
    from autocurriculum import control

    metrics = run_dir / runlog.METRICS_LOG
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such run directory")
    if not metrics.exists():
        raise ReportError(f"{metrics}: missing (not a run directory, or the run has not finished a step yet)")
    steps = _lines(metrics)
    if not steps:
        raise ReportError(f"{metrics}: no step recorded yet")
    info_path = run_dir / "run.json"
    try:
        info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.exists() else {}
    except ValueError:
        info = {}
    return Run(
        run_dir=run_dir,
        steps=steps,
        transitions=_lines(run_dir / runlog.TRANSITIONS_LOG),
        evaluations=_lines(run_dir / runlog.EVAL_LOG),
        status=control.read_status(run_dir),
        samples=completion_samples.read(run_dir),
        running_pid=control.running_pid(run_dir),
        info=info if isinstance(info, dict) else {},
    )


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        return list(runlog.read_lines(path))
    except ValueError as error:
        raise ReportError(str(error)) from None
