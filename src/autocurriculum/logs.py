"""Structured logs: one event name per thing that happens, with fixed fields.

JSON lines when stderr is not a terminal (a daemon's log is read by machines), readable console
output on one. Event names are constants so code, tests and dashboards spell them the same way.
"""

from __future__ import annotations

import logging
import sys
from typing import Final

import structlog

RUN_STARTED: Final = "run_started"  # policy, run_dir, resume, plan_steps, pid
RUN_RESUMED: Final = "run_resumed"  # step, plan_step, phase, checkpoint, discarded_log_lines
RUN_REFUSED: Final = "run_refused"  # reason
RUN_FINISHED: Final = "run_finished"  # step, plan_step, phase, done, stopped
PHASE_SWITCHED: Final = "phase_switched"  # step, action, factor, from_step, to_step, from_phase, to_phase, reason, evidence
ROLLBACK: Final = "rollback"  # same fields as phase_switched
OVERRIDE_APPLIED: Final = "override_applied"  # seq, command, result, message, step
CHECKPOINT_SAVED: Final = "checkpoint_saved"  # step, path, seconds
CHECKPOINT_FAILED: Final = "checkpoint_failed"  # step, error
CHECKPOINT_FALLBACK: Final = "checkpoint_fallback"  # step, path, problem
EPOCH_STARTED: Final = "epoch_started"  # source, epoch
ALERT: Final = "alert"  # alert, step, ...
EVALUATED: Final = "evaluated"  # step, metrics


def configure(json_lines: bool | None = None, level: int = logging.INFO) -> None:
    """Configure structlog for the process: JSON off a terminal, console on one."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    renderer = structlog.processors.JSONRenderer(sort_keys=False) if json_lines else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
