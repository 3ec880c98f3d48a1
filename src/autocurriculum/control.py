"""Operator control files: the pg_ctl promote pattern.

Plain signals carry no payload and coalesce (five SIGUSR1 can run a handler once), so a request is
a file: `autocurriculum ctl` allocates a sequence number under a lock, writes
RUN_DIR/control/requests/<seq>.json atomically (temp file, fsync, rename; mode 0600 in a 0700
directory), and sends SIGUSR1 to the daemon only as a wake-up. The daemon reads pending requests at
each step boundary (it polls; the signal just says "look now"), hands them to decide() in sequence
order, and acknowledges each exactly once in RUN_DIR/control/acks/<seq>.json. A request file not owned
by the daemon's user is rejected and logged. One daemon per run directory: RUN_DIR/daemon.pid is held
with flock for the daemon's lifetime.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from autocurriculum.override import Command, OperatorRequest

PIDFILE = "daemon.pid"
STATUS = "status.json"
CONTROL = "control"


class AlreadyRunning(RuntimeError):
    """Another daemon holds the run directory's pidfile."""


class ControlError(RuntimeError):
    """A request could not be written or read."""


def _write_atomic(path: Path, data: Mapping[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, sort_keys=True, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


@dataclass
class Pidfile:
    path: Path
    handle: object

    def release(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        finally:
            self.handle.close()  # type: ignore[attr-defined]


def acquire_pidfile(run_dir: Path) -> Pidfile:
    """Hold RUN_DIR/daemon.pid with an exclusive flock; a second daemon is refused with its pid."""
    path = run_dir / PIDFILE
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        other = handle.read().strip() or "?"
        handle.close()
        raise AlreadyRunning(f"run directory {run_dir} is in use by daemon pid {other} ({path} is locked)") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return Pidfile(path, handle)


def running_pid(run_dir: Path) -> int | None:
    """The pid of the daemon holding the run directory, or None when none holds it."""
    path = run_dir / PIDFILE
    if not path.exists():
        return None
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read().strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return None


def _requests_dir(run_dir: Path) -> Path:
    return run_dir / CONTROL / "requests"


def _acks_dir(run_dir: Path) -> Path:
    return run_dir / CONTROL / "acks"


def submit(run_dir: Path, command: Command, phase: str = "", reason: str = "") -> int:
    """Write one request atomically with the next sequence number and wake the daemon."""
    control = _private_dir(run_dir / CONTROL)
    requests = _private_dir(_requests_dir(run_dir))
    with open(control / "seq.lock", "a+", encoding="utf-8") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        counter = control / "seq"
        seq = int(counter.read_text() or 0) + 1 if counter.exists() else 1
        request = OperatorRequest(seq, command, phase, reason, user=str(os.getuid()))
        _write_atomic(requests / f"{seq:010d}.json", {**request.to_json(), "time": time.time()})
        counter.write_text(str(seq))
    pid = running_pid(run_dir)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass
    return seq


@dataclass(frozen=True)
class Ack:
    seq: int
    result: str
    message: str


def read_ack(run_dir: Path, seq: int) -> Ack | None:
    path = _acks_dir(run_dir) / f"{seq:010d}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Ack(int(data["seq"]), str(data["result"]), str(data["message"]))


def wait_for_ack(run_dir: Path, seq: int, timeout: float, poll: float = 0.05) -> Ack | None:
    deadline = time.monotonic() + timeout
    while True:
        ack = read_ack(run_dir, seq)
        if ack is not None or time.monotonic() >= deadline:
            return ack
        time.sleep(poll)


class ControlInbox:
    """The daemon's side: pending requests in order, acknowledgements, the wake-up flag."""

    def __init__(self, run_dir: Path, log=None) -> None:  # log: a structlog logger
        self.run_dir = run_dir
        self.log = log
        self.woken = False
        _private_dir(_requests_dir(run_dir))
        _private_dir(_acks_dir(run_dir))

    def install_wakeup_handler(self) -> None:
        def wake(_signum: int, _frame: object) -> None:
            self.woken = True

        signal.signal(signal.SIGUSR1, wake)

    def pending(self, after_seq: int) -> list[OperatorRequest]:
        """Requests with seq > after_seq, in order; foreign-owned or malformed ones are rejected here."""
        self.woken = False
        found: list[OperatorRequest] = []
        uid = os.getuid()
        for path in sorted(_requests_dir(self.run_dir).glob("*.json")):
            stem = path.stem
            if not stem.isdigit() or int(stem) <= after_seq:
                continue
            seq = int(stem)
            if read_ack(self.run_dir, seq) is not None and read_ack(self.run_dir, seq).result == "rejected":  # type: ignore[union-attr]
                continue
            try:
                owner = path.stat().st_uid
                data = json.loads(path.read_text(encoding="utf-8"))
                request = OperatorRequest.from_json(data)
            except (OSError, ValueError, KeyError) as error:
                self.acknowledge(seq, "rejected", f"malformed request file: {error}")
                continue
            if owner != uid:
                self.acknowledge(seq, "rejected", f"request file owned by uid {owner}, daemon runs as uid {uid}")
                if self.log is not None:
                    self.log.warning("request_rejected", seq=seq, owner=owner, path=str(path))
                continue
            if request.seq != seq:
                self.acknowledge(seq, "rejected", f"file name says seq {seq}, content says {request.seq}")
                continue
            found.append(request)
        return found

    def acknowledge(self, seq: int, result: str, message: str) -> None:
        _write_atomic(_acks_dir(self.run_dir) / f"{seq:010d}.json",
                      {"seq": seq, "result": result, "message": message, "time": time.time()})


def write_status(run_dir: Path, status: Mapping[str, object]) -> None:
    _write_atomic(run_dir / STATUS, status)


def read_status(run_dir: Path) -> dict[str, object] | None:
    try:
        return json.loads((run_dir / STATUS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
