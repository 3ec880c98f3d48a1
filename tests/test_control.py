"""Operator control: request files, sequence numbers, acks, status; and a real daemon obeying them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from autocurriculum import control
from autocurriculum.override import Command

from . import daemon_process as dp
from .conftest import REPO


def _submit(run_dir: str) -> int:
    return control.submit(Path(run_dir), Command.HOLD, reason="concurrency")


def test_concurrent_submitters_get_distinct_gapless_sequence_numbers(tmp_path: Path) -> None:
    with ProcessPoolExecutor(max_workers=8) as pool:
        seqs = list(pool.map(_submit, [str(tmp_path)] * 64))
    assert sorted(seqs) == list(range(1, 65))
    files = sorted((tmp_path / "control" / "requests").glob("*.json"))
    assert len(files) == 64
    assert all(json.loads(f.read_text())["seq"] == int(f.stem) for f in files)
    assert (tmp_path / "control" / "requests").stat().st_mode & 0o777 == 0o700
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)


def test_inbox_returns_pending_requests_in_order_and_rejects_foreign_and_malformed(tmp_path: Path) -> None:
    for command in (Command.HOLD, Command.RESUME, Command.ADVANCE):
        control.submit(tmp_path, command, reason="r")
    requests_dir = tmp_path / "control" / "requests"
    os.chown(requests_dir / "0000000002.json", 12345, 12345)
    (requests_dir / "0000000004.json").write_text("{not json")
    inbox = control.ControlInbox(tmp_path)
    pending = inbox.pending(after_seq=0)
    assert [(r.seq, r.command) for r in pending] == [(1, Command.HOLD), (3, Command.ADVANCE)]
    assert control.read_ack(tmp_path, 2).result == "rejected"
    assert "owned by uid 12345" in control.read_ack(tmp_path, 2).message
    assert control.read_ack(tmp_path, 4).result == "rejected"
    assert [r.seq for r in inbox.pending(after_seq=1)] == [3]


def test_a_second_pidfile_holder_is_refused(tmp_path: Path) -> None:
    held = control.acquire_pidfile(tmp_path)
    try:
        assert control.running_pid(tmp_path) == os.getpid()
        code = subprocess.run([sys.executable, "-c", (
            "import sys; from pathlib import Path; from autocurriculum import control\n"
            f"try:\n    control.acquire_pidfile(Path({str(tmp_path)!r}))\nexcept control.AlreadyRunning as e:\n"
            "    print(e); sys.exit(75)")], capture_output=True, text=True)
        assert code.returncode == 75 and f"in use by daemon pid {os.getpid()}" in code.stdout
    finally:
        held.release()
    assert control.running_pid(tmp_path) is None


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autocurriculum", *args], capture_output=True, text=True, cwd=REPO)


def test_status_exit_codes_without_a_daemon(tmp_path: Path) -> None:
    assert cli("status", "--run-dir", str(tmp_path / "nowhere")).returncode == 4
    assert cli("status", "--run-dir", str(tmp_path)).returncode == 4
    control.write_status(tmp_path, {"phase": "behaviour", "plan_step": 0, "step": 3})
    result = cli("status", "--run-dir", str(tmp_path), "--json")
    assert result.returncode == 3
    assert json.loads(result.stdout)["running"] is False
    waited = cli("ctl", "hold", "--reason", "x", "--run-dir", str(tmp_path), "--wait", "1")
    assert waited.returncode == 3 and "not running" in waited.stderr


@pytest.mark.slow
def test_a_real_daemon_applies_each_command_once_and_acknowledges_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "ctl"
    process = dp.start(run_dir, "run.max_steps=2000", "run.checkpoint_every=1000")
    try:
        dp.wait_for_steps(run_dir, 2, process)
        status = cli("status", "--run-dir", str(run_dir), "--json")
        assert status.returncode == 0 and json.loads(status.stdout)["running"] is True
        # held first, so only the operator moves the run while these are checked
        for args, expected in [(("hold",), "applied"), (("set", "correctness"), "applied"),
                               (("set", "nonsense"), "rejected"), (("advance",), "applied"), (("resume",), "applied")]:
            result = cli("ctl", *args, "--reason", "test", "--run-dir", str(run_dir), "--wait", "120")
            assert expected in result.stdout, result.stdout + result.stderr
            assert result.returncode == (0 if expected == "applied" else 2)
        # a storm: 100 requests as fast as they can be written, each with its SIGUSR1
        seqs = [control.submit(run_dir, Command.HOLD if i % 2 == 0 else Command.RESUME, reason=f"storm {i}")
                for i in range(100)]
        last = control.wait_for_ack(run_dir, seqs[-1], 120)
        assert last is not None and last.result == "applied"
        applied = [r for line in dp.lines(run_dir / "metrics.jsonl") for r in line.get("operator_results", [])]
        storm = [r["seq"] for r in applied if r["seq"] in set(seqs)]
        assert storm == seqs  # each applied exactly once, in order
        everything = [r["seq"] for r in applied]
        assert len(everything) == len(set(everything))
        transitions = dp.lines(run_dir / "transitions.jsonl")
        operator = [t for t in transitions if t["reason"] in ("operator_set", "operator_advance")]
        assert [t["to_phase"] for t in operator] == ["correctness/a", "correctness/b"]
        assert all(t["factor"] in ("data", "rewards") for t in operator)
    finally:
        process.terminate()
        dp.finish(process, 120)
    assert cli("status", "--run-dir", str(run_dir)).returncode == 3
