"""Structured logs: JSON off a terminal, console on one, fixed event names with their fields."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from autocurriculum import control, logs
from autocurriculum.override import Command


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_off_a_terminal_each_event_is_one_json_line_with_level_and_utc_time() -> None:
    stream = io.StringIO()
    logs.configure(stream=stream)
    log = logs.get_logger("test")
    log.info(logs.CHECKPOINT_SAVED, step=40, path="runs/x/checkpoints/step_00000040", seconds=1.25)
    log.warning(logs.EPOCH_STARTED, source="arithmetic", epoch=2)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["event"] == "checkpoint_saved" and first["step"] == 40 and first["seconds"] == 1.25
    assert first["level"] == "info" and second["level"] == "warning"
    assert first["timestamp"].endswith("Z")
    assert "missing_fields" not in first


def test_on_a_terminal_the_output_is_readable_not_json() -> None:
    stream = Terminal()
    logs.configure(stream=stream)
    logs.get_logger("test").info(logs.RUN_STARTED, policy="p.toml", run_dir="runs/x", resume=False, plan_steps=4, pid=1)
    text = stream.getvalue()
    assert "run_started" in text and "plan_steps" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_json_can_be_forced_on_a_terminal_and_the_level_filters() -> None:
    import logging

    stream = Terminal()
    logs.configure(json=True, level=logging.WARNING, stream=stream)
    log = logs.get_logger("test")
    log.info(logs.EPOCH_STARTED, source="a", epoch=1)
    log.error(logs.CHECKPOINT_FAILED, step=3, error="disk full")
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["checkpoint_failed"]


def test_an_event_without_a_required_field_is_kept_and_marked() -> None:
    stream = io.StringIO()
    logs.configure(json=True, stream=stream)
    logs.get_logger("test").info(logs.PHASE_SWITCHED, step=12, from_phase="behaviour", to_phase="correctness/a")
    event = json.loads(stream.getvalue())
    assert event["event"] == "phase_switched"
    assert set(event["missing_fields"]) == {"action", "factor", "from_step", "to_step", "reason", "evidence"}


def test_an_exception_becomes_structured_data_in_json() -> None:
    stream = io.StringIO()
    logs.configure(json=True, stream=stream)
    try:
        raise OSError("disk full")
    except OSError:
        logs.get_logger("test").exception(logs.CHECKPOINT_FAILED, step=5, error="disk full")
    event = json.loads(stream.getvalue())
    assert event["exception"][0]["exc_type"] == "OSError"


@given(st.sampled_from(sorted(logs.REQUIRED_FIELDS)), st.data())
def test_missing_fields_is_exactly_the_required_fields_left_out(event: str, data: st.DataObject) -> None:
    required = sorted(logs.REQUIRED_FIELDS[event])
    given_fields = data.draw(st.sets(st.sampled_from(required)) if required else st.just(set()))
    entry = {"event": event, **{name: 1 for name in given_fields}, "extra": "anything"}
    assert logs.missing_fields(entry) == frozenset(required) - given_fields


def test_the_switch_events_carry_from_to_reason_step_and_evidence() -> None:
    for event in (logs.PHASE_SWITCHED, logs.ROLLBACK):
        assert {"from_step", "to_step", "from_phase", "to_phase", "reason", "step", "evidence"} <= logs.REQUIRED_FIELDS[event]
    assert {"seq", "command", "result"} <= logs.REQUIRED_FIELDS[logs.OVERRIDE_APPLIED]
    assert {"step", "path", "seconds"} <= logs.REQUIRED_FIELDS[logs.CHECKPOINT_SAVED]


def test_a_rejected_request_is_logged_with_its_fields(tmp_path: Path) -> None:
    seq = control.submit(tmp_path, Command.HOLD, reason="from another user")
    os.chown(tmp_path / "control" / "requests" / f"{seq:010d}.json", 4242, 4242)
    inbox = control.ControlInbox(tmp_path, logs.get_logger("autocurriculum.daemon"))
    with capture_logs() as captured:
        assert inbox.pending(after_seq=0) == []
    assert [entry["event"] for entry in captured] == [logs.REQUEST_REJECTED]
    entry = captured[0]
    assert entry["log_level"] == "warning" and entry["seq"] == seq and "uid 4242" in entry["problem"]
    assert logs.missing_fields(entry) == frozenset()


SPEAKER = """
import sys
from autocurriculum import logs
logs.survive_unwritable_output()
for _ in range(100):
    print("x" * 99)  # 100 bytes a line
sys.stderr.write(f"lost {logs.lost_output_bytes()}")
"""


@pytest.mark.parametrize("survive, expected_exit", [(True, 0), (False, 1)])
def test_output_that_cannot_be_written_is_dropped_and_counted_not_raised(tmp_path: Path, survive: bool,
                                                                         expected_exit: int) -> None:
    """stdout on a file at its size limit (a full disk): the process goes on and reports what it lost."""
    import resource
    import subprocess
    import sys

    code = SPEAKER if survive else SPEAKER.replace("logs.survive_unwritable_output()", "pass")
    with open(tmp_path / "out.txt", "w") as out:
        result = subprocess.run([sys.executable, "-c", code], stdout=out, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000)))
    assert (tmp_path / "out.txt").stat().st_size == 1000
    assert result.returncode == expected_exit, result.stderr[-2000:]
    if survive:
        assert result.stderr == f"lost {100 * 100 - 1000}"
    else:  # without it, the first print past the limit raises out of the program
        assert "OSError: [Errno 27] File too large" in result.stderr
