"""Start and watch real daemon processes for the end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .conftest import REPO

E2E_POLICY = REPO / "tests" / "policies" / "e2e.toml"


def start(run_dir: Path, *sets: str, resume: bool = False, policy: Path = E2E_POLICY) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "autocurriculum", "run", str(policy), "--run-dir", str(run_dir)]
    if resume:
        args.append("--resume")
    for item in sets:
        args += ["--set", item]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # append mode: the daemon's writes land at the end even when a test writes to its output too
    log = open(run_dir.parent / f"{run_dir.name}.{'resume' if resume else 'run'}.{time.time_ns()}.log", "a")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env)


def policy_with_rewards(source: Path, folder: Path, *rewards: str) -> Path:
    """A copy of `source` in `folder` with `rewards` (TOML bodies of [[phases.rewards]] entries) added to
    phase 1's reward set, after its light_length_penalty; its cache_dir made absolute so the copy shares
    the repository's cache."""
    text = source.read_text().replace('cache_dir = "', 'cache_dir = "' + str(source.parent) + "/", 1)
    head, sep, tail = text.partition('name = "light_length_penalty"\n')
    assert sep, f"{source} has no light_length_penalty reward to add after"
    entries = "".join(f"\n[[phases.rewards]]\n{reward}\n" for reward in rewards)
    path = folder / "policy.toml"
    path.write_text(head + sep + entries + tail)
    return path


def free_port() -> int:
    """A TCP port nobody listens on right now (for a daemon's or a server's --set metrics.port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def wait_for_steps(run_dir: Path, count: int, process: subprocess.Popen[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while len(lines(run_dir / "metrics.jsonl")) < count:
        if process.poll() is not None:
            raise AssertionError(f"daemon exited with {process.returncode} before step {count}: {log_of(run_dir)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no step {count} within {timeout}s")
        time.sleep(0.1)


def finish(process: subprocess.Popen[str], timeout: float = 600) -> int:
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def kill9(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(30)


def log_of(run_dir: Path) -> str:
    logs = sorted(run_dir.parent.glob(f"{run_dir.name}.*.log"), key=lambda p: p.stat().st_mtime_ns)
    return logs[-1].read_text() if logs else ""


WALL_CLOCK_FIELDS = ("time", "step_seconds", "controller_seconds")


def without_wall_clock(record: dict[str, object]) -> dict[str, object]:
    """A metrics line without what a clock measures (its time, step and controller seconds, and the
    session's cumulative seconds per part among Tunix's figures): what a resumed run must repeat exactly."""
    kept = {key: value for key, value in record.items() if key not in WALL_CLOCK_FIELDS}
    tunix = kept.get("tunix")
    if isinstance(tunix, dict):
        kept["tunix"] = {key: value for key, value in tunix.items() if not key.startswith("seconds_total_")}
    return kept
