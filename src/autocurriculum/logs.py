"""Structured logs: one event name per thing that happens, with fixed fields.

A daemon's log is read by machines (jq, Loki, a test), so off a terminal each event is one JSON line;
on a terminal it is readable console output. Event names are constants and each has the fields it
must carry (`REQUIRED_FIELDS`), so code, tests and log queries spell them the same way. An event
logged without one of its fields is not dropped and does not crash the run: it gets a
`missing_fields` entry that a test (or a log query) catches.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Final, TextIO

import structlog

RUN_STARTED: Final = "run_started"
RUN_RESUMED: Final = "run_resumed"
RUN_REFUSED: Final = "run_refused"
RUN_FINISHED: Final = "run_finished"
PHASE_SWITCHED: Final = "phase_switched"
ROLLBACK: Final = "rollback"
OVERRIDE_APPLIED: Final = "override_applied"
REQUEST_REJECTED: Final = "request_rejected"
CHECKPOINT_SAVED: Final = "checkpoint_saved"
CHECKPOINT_FAILED: Final = "checkpoint_failed"
CHECKPOINT_FALLBACK: Final = "checkpoint_fallback"
WEIGHTS_RESTORED: Final = "weights_restored"
EPOCH_STARTED: Final = "epoch_started"
ITEMS_DROPPED: Final = "items_dropped"
REWARD_FAILED: Final = "reward_failed"
ALERT: Final = "alert"
EVALUATED: Final = "evaluated"

_SWITCH_FIELDS = frozenset({"step", "action", "factor", "from_step", "to_step", "from_phase", "to_phase", "reason", "evidence"})

REQUIRED_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    RUN_STARTED: frozenset({"policy", "run_dir", "resume", "plan_steps", "pid"}),
    RUN_RESUMED: frozenset({"step", "plan_step", "phase", "checkpoint", "discarded_log_lines"}),
    RUN_REFUSED: frozenset({"reason"}),
    RUN_FINISHED: frozenset({"step", "plan_step", "phase", "done", "stopped"}),
    PHASE_SWITCHED: _SWITCH_FIELDS,
    ROLLBACK: _SWITCH_FIELDS,
    OVERRIDE_APPLIED: frozenset({"seq", "command", "result", "message", "step"}),
    REQUEST_REJECTED: frozenset({"seq", "problem", "path"}),
    CHECKPOINT_SAVED: frozenset({"step", "path", "seconds"}),
    CHECKPOINT_FAILED: frozenset({"step", "error"}),
    CHECKPOINT_FALLBACK: frozenset({"step", "path", "problem"}),
    WEIGHTS_RESTORED: frozenset({"step", "checkpoint", "path", "collapse_began"}),
    EPOCH_STARTED: frozenset({"source", "epoch"}),
    ITEMS_DROPPED: frozenset({"part", "dropped", "kept", "reason"}),
    REWARD_FAILED: frozenset({"reward", "problem"}),
    ALERT: frozenset({"alert", "step"}),
    EVALUATED: frozenset({"step", "items"}),
}


def missing_fields(event_dict: Mapping[str, Any]) -> frozenset[str]:
    """The required fields this event lacks (empty for events without a fixed schema)."""
    required = REQUIRED_FIELDS.get(str(event_dict.get("event", "")), frozenset())
    return frozenset(required - event_dict.keys())


def check_fields(_logger: object, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mark (never drop) an event that lacks one of its required fields."""
    missing = missing_fields(event_dict)
    if missing:
        event_dict["missing_fields"] = sorted(missing)
    return event_dict


def configure(json: bool | None = None, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Configure structlog for the process: JSON lines off a terminal, console output on one.

    `json=None` decides from the stream (stderr by default): a terminal gets colours and aligned
    columns, anything else (a file, a pipe, systemd's journal) gets one JSON object per line.
    """
    stream = stream if stream is not None else sys.stderr
    if json is None:
        json = not stream.isatty()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        check_fields,
    ]
    if json:
        processors += [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer(default=str)]
    else:
        processors += [structlog.dev.ConsoleRenderer()]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


class _DroppingWriter(io.RawIOBase):
    """A file descriptor whose failed writes are counted and dropped instead of raised."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        self.lost_bytes = 0

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def isatty(self) -> bool:
        return os.isatty(self.fd)

    def write(self, data: Any) -> int:
        try:
            return os.write(self.fd, data)
        except OSError:
            self.lost_bytes += len(data)
            return len(data)


_writers: list[_DroppingWriter] = []


def survive_unwritable_output() -> None:
    """Make stdout and stderr drop what cannot be written instead of raising.

    Why: a daemon's output often goes to a file on the disk it trains on. When that disk fills (or
    the file reaches a size limit), every print and log line raises OSError, and an exception from a
    log call in the middle of a checkpoint's error handling killed the run with exit 1 and no
    message. Training state matters more than a log line: the lines are dropped and counted
    (`lost_output_bytes`, reported in `run_finished`), and a full disk still ends the run with the
    checkpoint's own error and exit code. The writers sit under Python's buffers, so nothing is left
    pending that would fail again when the interpreter flushes at exit.
    """
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # no descriptor (a test's capture): leave it
            continue
        writer = _DroppingWriter(fd)
        _writers.append(writer)
        stream.flush()
        setattr(sys, name, io.TextIOWrapper(io.BufferedWriter(writer), encoding=stream.encoding,
                                            errors="backslashreplace", line_buffering=True))


def lost_output_bytes() -> int:
    """Bytes of stdout/stderr output dropped because they could not be written."""
    return sum(writer.lost_bytes for writer in _writers)


def get_logger(name: str) -> Any:  # a structlog BoundLogger
    return structlog.get_logger(name)
