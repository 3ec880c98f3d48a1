"""`status`, `ctl` and `eval` find the run an operator means when no --run-dir is given."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from autocurriculum import control
from autocurriculum.run_directory import ENVIRONMENT_VARIABLE, RunDirectoryError, resolve_run_directory

from .conftest import REPO

HOLDER = """
import sys, time
from pathlib import Path
from autocurriculum import control
held = control.acquire_pidfile(Path(sys.argv[1]))
print("ready", flush=True)
sys.stdin.read()  # hold the pidfile until the test closes our stdin
held.release()
"""


def finished_run(folder: Path, phase: str = "behaviour") -> Path:
    folder.mkdir(parents=True)
    control.write_status(folder, {"phase": phase, "plan_step": 0, "step": 3})
    return folder


@pytest.fixture
def live_daemon() -> Iterator[callable]:
    """Make a folder a live run: a real process holds its pidfile as the daemon does."""
    holders: list[subprocess.Popen[str]] = []

    def hold(folder: Path) -> Path:
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        holders.append(holder)
        return folder

    yield hold
    for holder in holders:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)


def test_the_flag_then_the_environment_come_first(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    finished_run(runs / "tiny")
    assert resolve_run_directory("elsewhere", environ={ENVIRONMENT_VARIABLE: "env"}, runs_folder=runs) == Path("elsewhere")
    assert resolve_run_directory(None, environ={ENVIRONMENT_VARIABLE: "env"}, runs_folder=runs) == Path("env")


def test_the_one_live_run_wins_over_finished_ones(tmp_path: Path, live_daemon) -> None:
    runs = tmp_path / "runs"
    finished_run(runs / "tiny")
    gemma = live_daemon(finished_run(runs / "gemma3-1b", "correctness"))
    (runs / "not-a-run").mkdir()
    assert resolve_run_directory(None, environ={}, runs_folder=runs) == gemma


def test_two_live_runs_are_an_error_listing_both(tmp_path: Path, live_daemon) -> None:
    runs = tmp_path / "runs"
    first, second = live_daemon(finished_run(runs / "a")), live_daemon(finished_run(runs / "b"))
    with pytest.raises(RunDirectoryError, match=r"2 runs under .* have a live daemon") as raised:
        resolve_run_directory(None, environ={}, runs_folder=runs)
    assert str(first) in str(raised.value) and str(second) in str(raised.value)


def test_with_no_live_daemon_the_only_run_is_chosen_and_two_are_an_error(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    only = finished_run(runs / "tiny")
    assert resolve_run_directory(None, environ={}, runs_folder=runs) == only
    finished_run(runs / "other")
    with pytest.raises(RunDirectoryError, match=r"no live daemon and 2 runs .*other.*tiny"):
        resolve_run_directory(None, environ={}, runs_folder=runs)


def test_no_runs_at_all_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(RunDirectoryError, match=f"pass --run-dir DIR or set {ENVIRONMENT_VARIABLE}"):
        resolve_run_directory(None, environ={}, runs_folder=tmp_path / "runs")


def cli(cwd: Path, *args: str, environ: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != ENVIRONMENT_VARIABLE} | (environ or {})
    return subprocess.run([sys.executable, "-m", "autocurriculum", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def test_status_and_ctl_without_run_dir_talk_to_the_live_gemma_run_not_runs_tiny(tmp_path: Path, live_daemon) -> None:
    finished_run(tmp_path / "runs" / "tiny")
    gemma = live_daemon(finished_run(tmp_path / "runs" / "gemma3-1b", "correctness"))
    status = cli(tmp_path, "status")
    assert status.returncode == 0, status.stderr
    assert "runs/gemma3-1b (running" in status.stdout and "correctness" in status.stdout
    held = cli(tmp_path, "ctl", "hold", "--reason", "look")
    assert held.returncode == 0, held.stderr
    assert [r.reason for r in control.peek_pending(gemma, 0)] == ["look"]
    assert control.peek_pending(tmp_path / "runs" / "tiny", 0) == []


def test_commands_without_a_run_name_the_way_out(tmp_path: Path) -> None:
    for args in (("status",), ("ctl", "hold", "--reason", "r"), ("eval",)):
        result = cli(tmp_path, *args)
        assert result.returncode == 4, (args, result.stderr)
        assert f"pass --run-dir DIR or set {ENVIRONMENT_VARIABLE}" in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    named = cli(tmp_path, "status", environ={ENVIRONMENT_VARIABLE: str(finished_run(tmp_path / "mine"))})
    assert named.returncode == 3 and "mine (not running)" in named.stdout
