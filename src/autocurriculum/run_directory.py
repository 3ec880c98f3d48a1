"""Which run an operator's command means when it names none: `status`, `ctl` and `eval` share this rule.

A fixed default (it used to be `runs/tiny`) sends the operator of any other policy to the wrong run, or to
none, without a word. So the run directory is taken, in this order, from:

1. `--run-dir`;
2. the environment variable `AUTOCURRICULUM_RUN_DIR` (set once in a shell or a notebook);
3. the one run directory under `./runs` that a live daemon holds;
4. when no daemon is live, the one run directory under `./runs` (a finished run, e.g. for `eval`).

Two or more candidates at the deciding step are an error that lists them: guessing would steer the wrong
run. A run directory is a folder holding `run.json`, `status.json` or `daemon.pid`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from autocurriculum import control

ENVIRONMENT_VARIABLE = "AUTOCURRICULUM_RUN_DIR"
RUNS_FOLDER = Path("runs")
RUN_MARKERS = ("run.json", "status.json", control.PIDFILE)


class RunDirectoryError(RuntimeError):
    """No run directory could be chosen; the message says why and what to pass."""


def is_run_directory(folder: Path) -> bool:
    return folder.is_dir() and any((folder / marker).exists() for marker in RUN_MARKERS)


def _listing(folders: list[Path]) -> str:
    return ", ".join(str(folder) for folder in folders)


def resolve_run_directory(given: str | None, *, environ: Mapping[str, str] = os.environ,
                          runs_folder: Path = RUNS_FOLDER) -> Path:
    """The run directory the operator means (rules in the module docstring)."""
    if given:
        return Path(given)
    named = environ.get(ENVIRONMENT_VARIABLE)
    if named:
        return Path(named)
    runs = sorted(f for f in runs_folder.iterdir() if is_run_directory(f)) if runs_folder.is_dir() else []
    live = [folder for folder in runs if control.running_pid(folder) is not None]
    if len(live) == 1:
        return live[0]
    if len(live) > 1:
        raise RunDirectoryError(f"{len(live)} runs under {runs_folder}/ have a live daemon ({_listing(live)}); "
                                f"name one with --run-dir or {ENVIRONMENT_VARIABLE}")
    if len(runs) == 1:
        return runs[0]
    if runs:
        raise RunDirectoryError(f"no live daemon and {len(runs)} runs under {runs_folder}/ ({_listing(runs)}); "
                                f"name one with --run-dir or {ENVIRONMENT_VARIABLE}")
    raise RunDirectoryError(f"no run directory given and none under {runs_folder}/ (looked in "
                            f"{runs_folder.resolve()}); pass --run-dir DIR or set {ENVIRONMENT_VARIABLE}")
