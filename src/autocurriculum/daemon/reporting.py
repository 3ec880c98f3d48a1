"""What the daemon tells people about a step and a run: progress lines, status.json, the summary.

Why apart: these are views of the metrics-log record (runlog.metrics_record); none of them decides
anything, and each can change its wording without touching the loop.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from autocurriculum import control
from autocurriculum.controller import ControllerState, Decision
from autocurriculum.policy import Plan, PlanStep


def transition_record(step: int, decision: Decision, before: PlanStep, after: PlanStep) -> dict[str, object]:
    """One transitions.jsonl line (also the fields of the phase_switched / rollback log event)."""
    action = decision.action
    return {
        "step": step,
        "action": action.kind.value,
        "factor": action.factor.value,
        "from_step": action.from_step,
        "to_step": action.to_step,
        "from_phase": before.label,
        "to_phase": after.label,
        "reason": decision.reason.value,
    }


def progress_line(record: Mapping[str, Any]) -> str:
    """One line a person can follow a run by: phase, the watched metrics, the step time, any switch."""
    metrics = record["observation"]["metrics"]

    def fmt(name: str) -> str:
        value = metrics.get(name)
        return "  -  " if value is None else f"{value:5.2f}"

    decision = record["decision"]
    note = "" if decision["action"] == "none" else f"  << {decision['action']} ({decision['reason']})"
    return (
        f"step {record['step']:5d}  {str(record['phase'])[:14]:14s} "
        f"extract {fmt('extraction_rate')}  strict {fmt('strict_compliance')}  refuse {fmt('refusal_rate')}  "
        f"acc {fmt('accuracy')}  len {fmt('mean_length_tokens')}  "
        f"{float(record['step_seconds']):5.2f}s{note}"
    )


def status(record: Mapping[str, Any], *, policy_file: str, plan: Plan, state: ControllerState,
           done: bool) -> dict[str, object]:
    """The content of status.json after a step (what `autocurriculum status` shows)."""
    return {
        "pid": os.getpid(),
        "policy": policy_file,
        "step": record["step"],
        "plan_step": state.plan_step,
        "plan_steps": len(plan),
        "phase": record["phase"],
        "part": record["part"],
        "hold": record.get("hold", False),
        "hold_reason": state.hold_reason,
        "last_request_seq": state.last_request_seq,
        "done": done,
        "last_decision": record["decision"],
        "criteria": record.get("criteria", {}),
        "plateau": record.get("plateau", {}),
        "alerts": record.get("alerts", []),
        "updated": record["time"],
    }


def write_status(run_dir: Any, record: Mapping[str, Any], **fields: Any) -> None:
    control.write_status(run_dir, status(record, **fields))


def summary_lines(step: int, plan: Plan, plan_step: int, done: bool, phase_steps: Mapping[str, int],
                  transitions: Sequence[Mapping[str, Any]]) -> list[str]:
    """The end-of-run summary: where the run ended, steps per phase, every transition."""
    final = plan[plan_step]
    ending = " - curriculum complete" if done else ""
    lines = ["", f"autocurriculum: {step} steps, ended in plan step {plan_step + 1}/{len(plan)} ({final.label}){ending}"]
    lines += [f"  {phase:16s} {count:5d} steps" for phase, count in phase_steps.items()]
    lines += [
        f"  step {t['step']:5d}: {t['action']:13s} {t['from_phase']} -> {t['to_phase']} ({t['reason']})"
        for t in transitions
    ]
    return lines
