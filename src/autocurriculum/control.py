"""Operator control files: the pg_ctl promote pattern.

Plain signals carry no payload and coalesce (five SIGUSR1 can run a handler once), so a request is
a file: `autocurriculum ctl` allocates the next sequence number under a lock, writes
RUN_DIR/control/requests/<seq>.json atomically (temp file, fsync, rename; mode 0600 in a 0700
directory), and sends SIGUSR1 to the daemon only as a wake-up. The daemon reads pending requests at
each step boundary (it polls; the signal just says "look now"), hands them to decide() in sequence
order, and acknowledges each in RUN_DIR/control/acks/<seq>.json. A request file not owned by the
daemon's user, or not a well-formed request, is rejected there and then, acknowledged as rejected
and logged. One daemon per run directory: RUN_DIR/daemon.pid is held with flock for the daemon's
lifetime, so "is it running?" is answered by the lock, never by a pid that may have been reused.
A daemon run in-process without signal handlers (a notebook) marks its pidfile `polls`: no SIGUSR1
is sent to it, since that signal's default action would end the notebook's whole process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import stat
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from autocurriculum.durable import fsync_path
from autocurriculum.logs import REQUEST_REJECTED
from autocurriculum.override import Command, OperatorRequest

PIDFILE = "daemon.pid"
POLLS_ONLY = "polls"  # second line of the pidfile: the daemon has no SIGUSR1 handler, do not signal it
STATUS = "status.json"
CONTROL = "control"
APPLIED = "applied"
REJECTED = "rejected"
SETTLED_NS = 2_000_000_000  # a directory unchanged for 2 s: its listing can be reused while its mtime stands
LOCK_RETRY_SECONDS = 0.3  # a status probe holds the pidfile lock for microseconds; a daemon forever


class AlreadyRunning(RuntimeError):
    """Another daemon holds the run directory's pidfile."""


class ControlError(RuntimeError):
    """A request could not be written or read."""


def _write_atomic(path: Path, data: Mapping[str, object], durable: bool = True) -> None:
    """Write JSON so that a reader sees the old file or the whole new one, never a part (mode 0600).

    `durable` also fsyncs the file and its directory, so the write survives a power cut: requests and
    acknowledgements need that (exactly once across a crash); status.json, rewritten every step, does not.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, sort_keys=True, default=str)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_path(path.parent)


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_IMODE(path.stat().st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def _requests_dir(run_dir: Path) -> Path:
    return run_dir / CONTROL / "requests"


def _acks_dir(run_dir: Path) -> Path:
    return run_dir / CONTROL / "acks"


def _file_name(seq: int) -> str:
    return f"{seq:010d}.json"


def _request_seqs(run_dir: Path, after_seq: int = 0) -> list[int]:
    """Sequence numbers of the request files above `after_seq`, in order (os.scandir: cheap per step)."""
    seqs = []
    try:
        with os.scandir(_requests_dir(run_dir)) as entries:
            for entry in entries:
                stem, dot, ext = entry.name.partition(".")
                if dot and ext == "json" and stem.isdigit() and int(stem) > after_seq:
                    seqs.append(int(stem))
    except FileNotFoundError:
        return []
    return sorted(seqs)


# ---------------------------------------------------------------- pidfile


@dataclass
class Pidfile:
    path: Path
    handle: TextIO

    def release(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        finally:
            self.handle.close()


def acquire_pidfile(run_dir: Path, *, woken_by_signal: bool = True) -> Pidfile:
    """Hold RUN_DIR/daemon.pid with an exclusive flock; a second daemon is refused with the first's pid.

    `woken_by_signal=False`: the holder has no SIGUSR1 handler; `submit` will not signal it.
    """
    path = run_dir / PIDFILE
    deadline = time.monotonic() + LOCK_RETRY_SECONDS
    while True:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open (locked) for the daemon's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            other = handle.read().partition("\n")[0].strip() or "?"
            handle.close()
            if time.monotonic() < deadline:
                time.sleep(0.05)  # perhaps a status probe; a daemon would still hold it
                continue
            raise AlreadyRunning(
                f"run directory {run_dir} is in use by daemon pid {other} ({path} is locked); "
                "a second `run` on the same directory is refused"
            ) from None
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the previous holder unlinked it between our open and our lock: start over
            handle.close()
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n" + ("" if woken_by_signal else f"{POLLS_ONLY}\n"))
        handle.flush()
        os.fsync(handle.fileno())
        return Pidfile(path, handle)


def running_pid(run_dir: Path) -> int | None:
    """The pid of the daemon holding the run directory, or None when no daemon holds it."""
    path = run_dir / PIDFILE
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed by the `with` below, after the missing case
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            for _ in range(20):  # the daemon writes its pid right after locking
                handle.seek(0)
                text = handle.read().partition("\n")[0].strip()
                if text.isdigit():
                    return int(text)
                time.sleep(0.01)
            return -1  # locked, so running, but the pid is unreadable
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return None


# ---------------------------------------------------------------- operator side


def submit(run_dir: Path, command: Command, phase: str = "", reason: str = "") -> int:
    """Write one request atomically with the next sequence number, wake the daemon, return the seq.

    The number is allocated under an exclusive flock, so concurrent `ctl` calls get distinct,
    consecutive numbers; it is above every request file present, so a lost counter cannot reuse one.
    """
    command = Command(command)
    if command is Command.SET and not phase:
        raise ControlError("ctl set needs a PHASE")
    try:
        control = _private_dir(run_dir / CONTROL)
        requests = _private_dir(_requests_dir(run_dir))
        with open(control / "seq.lock", "a+", encoding="utf-8") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            seq = _last_seq(run_dir) + 1
            request = OperatorRequest(seq, command, phase, reason, user=str(os.getuid()))
            path = requests / _file_name(seq)
            _write_atomic(path, {**request.to_json(), "time": time.time()}, durable=False)
            _write_atomic(control / "seq.json", {"seq": seq}, durable=False)  # the files are the truth
        # durable before returning, but outside the lock: concurrent submitters wait for the disk together
        fsync_path(path)
        fsync_path(path.parent)
    except PermissionError as error:
        raise ControlError(f"cannot write a request in {run_dir}: {error.strerror} ({error.filename})") from None
    pid = running_pid(run_dir)
    if pid is not None and pid > 0 and _wakes_by_signal(run_dir):
        with contextlib.suppress(ProcessLookupError, PermissionError):  # it polls too: the signal only wakes it
            os.kill(pid, signal.SIGUSR1)
    return seq


def _wakes_by_signal(run_dir: Path) -> bool:
    try:
        return POLLS_ONLY not in (run_dir / PIDFILE).read_text(encoding="utf-8").split()
    except OSError:
        return False


def _last_seq(run_dir: Path) -> int:
    """The highest number ever allocated: the counter, or a request file above it if the counter was lost."""
    try:
        last = int(json.loads((run_dir / CONTROL / "seq.json").read_text(encoding="utf-8"))["seq"])
    except (OSError, ValueError, KeyError, TypeError):
        return max([0, *_request_seqs(run_dir)])  # lost or damaged: the request files say how far it went
    requests = _requests_dir(run_dir)
    while (requests / _file_name(last + 1)).exists():  # a submitter died between its request and the counter
        last += 1
    return last


@dataclass(frozen=True)
class Ack:
    seq: int
    result: str  # APPLIED or REJECTED
    message: str


def read_ack(run_dir: Path, seq: int) -> Ack | None:
    try:
        data = json.loads((_acks_dir(run_dir) / _file_name(seq)).read_text(encoding="utf-8"))
        return Ack(int(data["seq"]), str(data["result"]), str(data["message"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def wait_for_ack(run_dir: Path, seq: int, timeout: float, poll: float = 0.05) -> Ack | None:
    """The acknowledgement of `seq`, or None after `timeout` seconds or once no daemon holds the directory."""
    deadline = time.monotonic() + timeout
    next_liveness = time.monotonic() + 0.5
    while True:
        ack = read_ack(run_dir, seq)
        if ack is not None:
            return ack
        now = time.monotonic()
        if now >= deadline:
            return None
        if now >= next_liveness:
            next_liveness = now + 0.5
            if running_pid(run_dir) is None:
                return read_ack(run_dir, seq)
        time.sleep(poll)


def peek_pending(run_dir: Path, after_seq: int) -> list[OperatorRequest]:
    """Read-only view of the requests not yet handled (for `status`): no acks written, nothing created."""
    found = []
    for seq in _request_seqs(run_dir, after_seq):
        if read_ack(run_dir, seq) is not None:
            continue
        try:
            path = _requests_dir(run_dir) / _file_name(seq)
            found.append(OperatorRequest.from_json(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return found


# ---------------------------------------------------------------- daemon side


class ControlInbox:
    """The daemon's side: pending requests in order, acknowledgements, the wake-up flag."""

    def __init__(self, run_dir: Path, log: Any = None) -> None:  # log: a structlog logger
        self.run_dir = run_dir
        self.log = log
        self.woken = False
        self._scan: tuple[tuple[int, int, int], list[int]] | None = None  # (directory stamp, after_seq) -> seqs
        _private_dir(run_dir / CONTROL)
        _private_dir(_requests_dir(run_dir))
        _private_dir(_acks_dir(run_dir))

    def install_wakeup_handler(self) -> None:
        """SIGUSR1 only sets a flag: the daemon reads the files at its next boundary (it polls anyway)."""

        def wake(_signum: int, _frame: object) -> None:
            self.woken = True

        signal.signal(signal.SIGUSR1, wake)

    def pending(self, after_seq: int) -> list[OperatorRequest]:
        """Requests with seq > after_seq, in order; foreign-owned or malformed ones are rejected here."""
        self.woken = False
        found: list[OperatorRequest] = []
        for seq in self._candidates(after_seq):
            path = _requests_dir(self.run_dir) / _file_name(seq)
            previous = read_ack(self.run_dir, seq)
            if previous is not None and previous.result == REJECTED:
                continue
            request, problem = self._read(path, seq)
            if request is None:
                self._reject(seq, path, problem)
                continue
            found.append(request)
        return found

    def _candidates(self, after_seq: int) -> list[int]:
        """The request numbers above after_seq; the directory is listed again only when it changed.

        A settled directory (modified more than SETTLED_NS before the listing began) that still has the
        same mtime has had nothing added since, so the previous listing stands. Timestamps are
        coarse, so a directory modified just before a listing is always listed again (git's
        "racily clean" rule). This keeps the per-step poll cheap after thousands of requests.
        """
        info = os.stat(_requests_dir(self.run_dir))
        stamp = (info.st_mtime_ns, info.st_ino, after_seq)
        if self._scan is not None and self._scan[0] == stamp:
            return self._scan[1]
        started = time.time_ns()
        seqs = _request_seqs(self.run_dir, after_seq)
        self._scan = (stamp, seqs) if started - info.st_mtime_ns > SETTLED_NS else None
        return seqs

    def _read(self, path: Path, seq: int) -> tuple[OperatorRequest | None, str]:
        uid = os.getuid()
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as error:
            return None, f"unreadable request file: {error.strerror}"
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                return None, "request is not a regular file"
            if info.st_uid != uid:
                return None, f"request file owned by uid {info.st_uid}, the daemon runs as uid {uid}"
            if info.st_mode & 0o022:
                return None, f"request file is writable by others (mode {stat.S_IMODE(info.st_mode):o})"
            try:
                request = OperatorRequest.from_json(json.loads(handle.read(65536).decode("utf-8")))
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                return None, f"malformed request file: {type(error).__name__}: {error}"
        if request.seq != seq:
            return None, f"file name says seq {seq}, its content says {request.seq}"
        if request.command is Command.SET and not request.phase:
            return None, "set without a phase"
        return request, ""

    def _reject(self, seq: int, path: Path, problem: str) -> None:
        self.acknowledge(seq, REJECTED, problem)
        if self.log is not None:
            self.log.warning(REQUEST_REJECTED, seq=seq, problem=problem, path=str(path))

    def acknowledge(self, seq: int, result: str, message: str) -> None:
        _write_atomic(
            _acks_dir(self.run_dir) / _file_name(seq), {"seq": seq, "result": result, "message": message, "time": time.time()}
        )


# ---------------------------------------------------------------- status


def write_status(run_dir: Path, status: Mapping[str, object]) -> None:
    """Replace status.json atomically (not fsynced: it is rewritten every step and only informs)."""
    _write_atomic(run_dir / STATUS, status, durable=False)


def read_status(run_dir: Path) -> dict[str, object] | None:
    try:
        data = json.loads((run_dir / STATUS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
