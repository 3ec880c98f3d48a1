"""The daemon's lifecycle around a run: the run directory's lock, the stop signals, the metrics server.

Why apart from the loop: these are process-wide effects. The command line wants all of them (one
daemon per run directory, SIGTERM finishes the step and checkpoints), while a notebook or a test
running the daemon in-process may not own the process's signals; `StopSignals` is only installed
when asked, and only from the main thread (Python allows no other), and puts back what it replaced.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from autocurriculum import control, logs
from autocurriculum.exits import EX_CONFIG, refusal_exit_code
from autocurriculum.policy import PolicyError, policy_exit_code

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
RUN_FILE = "run.json"  # what `autocurriculum eval` needs to rebuild a run's model and data

SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class StopSignals:
    """SIGTERM/SIGINT/SIGHUP set `stop`; SIGUSR1 wakes the control inbox; SIGXFSZ is ignored.

    Tunix installs handlers of its own that do not chain (utils/trajectory_logger.py): `ensure()`
    puts ours back, and the daemon calls it before every training segment.
    """

    def __init__(self, stop: threading.Event, inbox: control.ControlInbox | None) -> None:
        self._stop = stop
        self._inbox = inbox
        self._previous: dict[int, SignalHandler] = {}

    def _request_stop(self, _signum: int, _frame: FrameType | None) -> None:
        self._stop.set()

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("signal handlers can only be installed from the main thread")
        for signum in (*STOP_SIGNALS, signal.SIGUSR1, signal.SIGXFSZ):
            self._previous[signum] = signal.getsignal(signum)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._request_stop)
        if self._inbox is not None:  # process 0's alone in a multi-process run
            self._inbox.install_wakeup_handler()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit fails the write (EFBIG), not the process

    def ensure(self) -> None:
        """Put the stop handlers back if anything replaced them (main thread only)."""
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) != self._request_stop:
                signal.signal(signum, self._request_stop)

    def restore(self) -> None:
        """Put back what `install()` replaced (an in-process run leaves the process as it found it)."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()


def prepare_run_dir(run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(run_dir, 0o700)


def write_run_file(run_dir: Path, policy_file: str, overrides: Sequence[str]) -> None:
    (run_dir / RUN_FILE).write_text(json.dumps({"policy": str(Path(policy_file).resolve()),
                                                "overrides": list(overrides)}))


def refuse(error: BaseException, policy_file: str, log: Any) -> int:
    """One line on stderr for input the run cannot use, and the exit code of its kind (exits.py).

    A setting is named with its policy file (the message names the TOML path and the value); a
    data file's message names that file, its line and field.
    """
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, PolicyError):  # a user's reward function: its message names the file already
        code = policy_exit_code(error)
    else:
        code = refusal_exit_code(error)
        if code == EX_CONFIG:
            text = f"{policy_file}: {text}"
    log.error(logs.RUN_REFUSED, reason=text, exit_code=code)
    print(f"autocurriculum: {text}", file=sys.stderr, flush=True)
    return code
