"""Operator control: request files, sequence numbers, acks, status; and a real daemon obeying them."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
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
    # phase 1's first criterion can never hold (a share above 1): `advance` is refused however fast the
    # machine trains, so the test's verdict does not depend on it
    process = dp.start(run_dir, "run.max_steps=2000", "run.checkpoint_every=1000",
                       'phases[0].criteria[0].comparison=">"', "phases[0].criteria[0].threshold=1.0")
    try:
        dp.wait_for_steps(run_dir, 2, process)
        status = cli("status", "--run-dir", str(run_dir), "--json")
        assert status.returncode == 0 and json.loads(status.stdout)["running"] is True
        # held first, so only the operator moves the run while these are checked; `set` goes to the
        # phase's last plan step one factor per boundary; advancing into new domains before phase 1's
        # criteria ever held is refused
        for args, expected, message in [(("hold",), "applied", ""), (("set", "correctness"), "applied", ""),
                                        (("set", "nonsense"), "rejected", "unknown phase"),
                                        (("advance",), "rejected", "criteria have not held"),
                                        (("resume",), "applied", "")]:
            if args == ("advance",):
                deadline = time.monotonic() + 120  # let the set finish its walk first
                while json.loads(cli("status", "--run-dir", str(run_dir), "--json").stdout).get("part") != "b":
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
            result = cli("ctl", *args, "--reason", "test", "--run-dir", str(run_dir), "--wait", "120")
            assert expected in result.stdout and message in result.stdout, result.stdout + result.stderr
            assert result.returncode == (0 if expected == "applied" else 2)
        # a storm: 1,000 requests back to back, each with its SIGUSR1, while the daemon trains (how long
        # writing them takes is this machine's business, not the verdict's)
        started = time.monotonic()
        seqs = [control.submit(run_dir, Command.HOLD if i % 2 == 0 else Command.RESUME, reason=f"storm {i}")
                for i in range(1000)]
        print(f"the storm's 1,000 requests were written in {time.monotonic() - started:.1f} s")
        assert seqs == list(range(seqs[0], seqs[0] + 1000))
        last = control.wait_for_ack(run_dir, seqs[-1], 120)
        assert last is not None and last.result == "applied"
        applied = [r for line in dp.lines(run_dir / "metrics.jsonl") for r in line.get("operator_results", [])]
        storm = [r["seq"] for r in applied if r["seq"] in set(seqs)]
        assert storm == seqs  # each applied exactly once, in order
        everything = [r["seq"] for r in applied]
        assert len(everything) == len(set(everything))
        transitions = dp.lines(run_dir / "transitions.jsonl")
        operator = [t for t in transitions if t["reason"] in ("operator_set", "operator_advance")]
        assert [t["to_phase"] for t in operator][:2] == ["correctness/a", "correctness/b"]
        assert all(t["factor"] in ("data", "rewards") for t in operator)
    finally:
        process.terminate()
        dp.finish(process, 120)
    assert cli("status", "--run-dir", str(run_dir)).returncode == 3


# ---------------------------------------------------------------- files, locks and signals

FAKE_DAEMON = """
import sys, time
from pathlib import Path
from autocurriculum import control
run_dir, mode = Path(sys.argv[1]), sys.argv[2]
pidfile = control.acquire_pidfile(run_dir)
inbox = control.ControlInbox(run_dir)
inbox.install_wakeup_handler()
control.write_status(run_dir, {"phase": "behaviour", "plan_step": 0, "plan_steps": 4, "step": 1, "last_request_seq": 0})
print("ready", flush=True)
last = 0
while True:
    for request in inbox.pending(last):
        if mode == "ack":
            bad = request.phase == "nonsense"
            inbox.acknowledge(request.seq, "rejected" if bad else "applied", "unknown phase" if bad else "done")
        last = request.seq
    time.sleep(0.02)
"""


@pytest.fixture
def fake_daemon(tmp_path: Path, request: pytest.FixtureRequest):
    """A real process that holds the pidfile and acknowledges requests (mode "ack") or ignores them."""
    process = subprocess.Popen([sys.executable, "-c", FAKE_DAEMON, str(tmp_path), getattr(request, "param", "ack")],
                               stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    yield tmp_path
    process.terminate()
    process.wait(10)


def ctl(*argv: str) -> int:
    from autocurriculum import control_cli

    parser = control_cli.add_ctl_arguments(argparse.ArgumentParser())
    return control_cli.cmd_ctl(parser.parse_args(argv))


def test_ctl_waits_for_the_acknowledgement_and_reports_rejection(fake_daemon: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl("set", "correctness", "--reason", "r", "--run-dir", str(fake_daemon), "--wait", "10") == 0
    assert "#1 applied: done" in capsys.readouterr().out
    assert ctl("set", "nonsense", "--reason", "r", "--run-dir", str(fake_daemon), "--wait", "10") == 2
    assert "#2 rejected: unknown phase" in capsys.readouterr().out


@pytest.mark.parametrize("fake_daemon", ["ignore"], indirect=True)
def test_ctl_times_out_when_the_daemon_never_acknowledges(fake_daemon: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl("hold", "--reason", "r", "--run-dir", str(fake_daemon), "--wait", "0.3") == 1
    assert "no acknowledgement of #1 within 0.3s" in capsys.readouterr().err


def test_ctl_usage_errors_and_unknown_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    control.write_status(tmp_path, {"step": 1})
    assert ctl("set", "--reason", "r", "--run-dir", str(tmp_path)) == 64
    assert ctl("hold", "behaviour", "--reason", "r", "--run-dir", str(tmp_path)) == 64
    assert ctl("hold", "--reason", "r", "--run-dir", str(tmp_path / "nowhere")) == 4
    assert not (tmp_path / "control").exists()  # nothing written by a refused command
    assert ctl("hold", "--reason", "later", "--run-dir", str(tmp_path)) == 0  # queued for a resume
    assert "applies when the run resumes" in capsys.readouterr().out
    assert [r.reason for r in control.peek_pending(tmp_path, 0)] == ["later"]


@pytest.mark.parametrize("fake_daemon", ["ignore"], indirect=True)
def test_status_shows_phase_decision_criteria_plateau_and_pending(fake_daemon: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from autocurriculum import control_cli

    status = {
        "phase": "correctness", "part": "a", "plan_step": 1, "plan_steps": 4, "step": 37, "last_request_seq": 0,
        "hold": True, "hold_reason": "operator: look", "updated": 1.0,
        "last_decision": {"action": "hold", "reason": "operator_hold", "evidence": {"steps_in_step": 2, "alerts": []}},
        "criteria": {"extraction_rate": {"value": 0.97, "comparison": ">=", "threshold": 0.95, "holds": True}},
        "plateau": {"accuracy": {"test": "trend", "statistic": 0.3, "bound": 0.2, "plateaued": False, "ready": True}},
    }
    control.write_status(fake_daemon, status)
    control.submit(fake_daemon, Command.ADVANCE, reason="go on")
    parser = control_cli.add_status_arguments(argparse.ArgumentParser())
    code = control_cli.cmd_status(parser.parse_args(["--run-dir", str(fake_daemon)]))
    out = capsys.readouterr().out
    assert code == 0
    assert "phase:      correctness/a  (plan step 2/4)" in out
    assert "HELD: operator: look" in out
    assert "decision:   hold (operator_hold)" in out and "steps_in_step=2" in out
    assert "criterion:  extraction_rate >= 0.95: window 0.97 -> holds" in out
    assert "plateau:    accuracy (trend): 0.3 vs 0.2 -> not yet" in out
    assert "pending:    #1 advance (go on)" in out


def test_status_json_says_running_and_lists_pending(tmp_path: Path) -> None:
    from autocurriculum import control_cli

    held = control.acquire_pidfile(tmp_path)  # this process is the "daemon": submit() signals it
    previous = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        control.write_status(tmp_path, {"phase": "behaviour", "plan_step": 0, "step": 5, "last_request_seq": 1})
        for command in (Command.HOLD, Command.RESUME):
            control.submit(tmp_path, command, reason="x")
        code, status = control_cli.gather_status(tmp_path)
        assert code == 0 and status["running"] is True and status["pid"] == os.getpid()
        assert [r["seq"] for r in status["pending_requests"]] == [2]  # 1 is already handled
    finally:
        signal.signal(signal.SIGUSR1, previous)
        held.release()


def test_a_lost_counter_never_reuses_a_sequence_number(tmp_path: Path) -> None:
    assert [control.submit(tmp_path, Command.HOLD) for _ in range(3)] == [1, 2, 3]
    (tmp_path / "control" / "seq.json").unlink()
    assert control.submit(tmp_path, Command.RESUME) == 4
    (tmp_path / "control" / "seq.json").write_text("garbage")
    assert control.submit(tmp_path, Command.RESUME) == 5
    with pytest.raises(control.ControlError, match="needs a PHASE"):
        control.submit(tmp_path, Command.SET, phase="")


def test_status_and_ack_files_are_private_and_replaced_whole(tmp_path: Path) -> None:
    """A reader polling status.json while the daemon rewrites it never sees a partial file."""
    control.write_status(tmp_path, {"step": 0})
    stop = threading.Event()
    seen: list[object] = []

    def read() -> None:
        while not stop.is_set():
            seen.append(control.read_status(tmp_path))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for step in range(1, 120):
            control.write_status(tmp_path, {"step": step, "padding": "x" * (step * 37 % 4000)})
    finally:
        stop.set()
        reader.join()
    assert seen and None not in seen
    steps = [s["step"] for s in seen]  # type: ignore[index]
    assert steps == sorted(steps)
    assert (tmp_path / "status.json").stat().st_mode & 0o777 == 0o600
    inbox = control.ControlInbox(tmp_path)
    inbox.acknowledge(7, control.APPLIED, "ok")
    assert (tmp_path / "control" / "acks" / "0000000007.json").stat().st_mode & 0o777 == 0o600
    leftovers = [p.name for p in tmp_path.rglob(".tmp-*")]
    assert leftovers == []


def test_the_inbox_rejects_links_mismatched_numbers_and_world_writable_files(tmp_path: Path) -> None:
    control.submit(tmp_path, Command.HOLD)
    requests_dir = tmp_path / "control" / "requests"
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"seq": 2, "command": "advance"}))
    (requests_dir / "0000000002.json").symlink_to(target)
    (requests_dir / "0000000003.json").write_text(json.dumps({"seq": 30, "command": "advance"}))
    (requests_dir / "0000000004.json").write_text(json.dumps({"seq": 4, "command": "advance"}))
    os.chmod(requests_dir / "0000000004.json", 0o666)
    (requests_dir / "0000000005.json").write_text(json.dumps({"seq": 5, "command": "explode"}))
    inbox = control.ControlInbox(tmp_path)
    assert [r.seq for r in inbox.pending(after_seq=0)] == [1]
    problems = {seq: control.read_ack(tmp_path, seq) for seq in (2, 3, 4, 5)}
    assert all(ack is not None and ack.result == "rejected" for ack in problems.values())
    assert "file name says seq 3" in problems[3].message  # type: ignore[union-attr]
    assert "writable by others" in problems[4].message  # type: ignore[union-attr]
    assert "malformed" in problems[5].message  # type: ignore[union-attr]
    assert control.peek_pending(tmp_path, 0)[0].seq == 1  # rejected ones are not pending any more


def test_peek_pending_writes_nothing(tmp_path: Path) -> None:
    control.submit(tmp_path, Command.HOLD)
    (tmp_path / "control" / "requests" / "0000000002.json").write_text("{broken")
    assert [r.seq for r in control.peek_pending(tmp_path, 0)] == [1]
    assert not (tmp_path / "control" / "acks").exists()
    assert control.peek_pending(tmp_path / "nowhere", 0) == []


def test_sigusr1_only_sets_the_wakeup_flag(tmp_path: Path) -> None:
    inbox = control.ControlInbox(tmp_path)
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        inbox.install_wakeup_handler()
        assert inbox.woken is False
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.01)
        assert inbox.woken is True
        inbox.pending(after_seq=0)
        assert inbox.woken is False
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_a_stale_pidfile_is_not_a_running_daemon(tmp_path: Path) -> None:
    (tmp_path / control.PIDFILE).write_text(f"{os.getpid()}\n")  # a live pid, but nobody holds the lock
    assert control.running_pid(tmp_path) is None
    started = time.monotonic()
    assert control.wait_for_ack(tmp_path, 1, timeout=300) is None  # gives up once it sees no daemon
    assert time.monotonic() - started < 250  # long before its timeout, however busy the machine
    held = control.acquire_pidfile(tmp_path)
    try:
        assert control.running_pid(tmp_path) == os.getpid()
    finally:
        held.release()


def test_the_per_step_poll_lists_the_directory_again_only_when_it_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listings: list[int] = []
    real = control._request_seqs

    def counting(run_dir: Path, after_seq: int = 0) -> list[int]:
        listings.append(after_seq)
        return real(run_dir, after_seq)

    monkeypatch.setattr(control, "_request_seqs", counting)
    inbox = control.ControlInbox(tmp_path)
    control.submit(tmp_path, Command.HOLD)
    assert listings == [0]  # no counter yet: the first submit lists the directory (later ones read the counter)
    listings.clear()
    requests_dir = tmp_path / "control" / "requests"
    # just modified ("racily clean"): every poll lists it again
    assert [r.seq for r in inbox.pending(0)] == [1] and [r.seq for r in inbox.pending(0)] == [1]
    assert len(listings) == 2
    # settled (modified long ago): the listing stands while the directory's mtime does
    old = time.time() - 60
    os.utime(requests_dir, (old, old))
    inbox.pending(1), inbox.pending(1), inbox.pending(1)
    assert len(listings) == 3
    control.submit(tmp_path, Command.RESUME)  # a new file changes the mtime: listed again, seen at once
    assert [r.seq for r in inbox.pending(1)] == [2]
    assert len(listings) == 4


def test_a_counter_behind_its_request_files_is_caught_up(tmp_path: Path) -> None:
    """A submitter killed between writing its request and the counter: the next number skips past it."""
    assert [control.submit(tmp_path, Command.HOLD) for _ in range(2)] == [1, 2]
    (tmp_path / "control" / "seq.json").write_text('{"seq": 1}')
    assert control.submit(tmp_path, Command.RESUME) == 3
