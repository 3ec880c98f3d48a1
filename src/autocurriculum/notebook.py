"""Run the curriculum from a notebook cell or a script, in the calling process.

Kaggle and Colab users start training from a cell, not from a shell, and look at the run in the
notebook. `run(policy, ...)` runs the daemon in this process (daemon.run_daemon) and returns what
happened: final phase, steps, transitions with their reasons, the run directory. In a notebook it
keeps an inline view (phase, plan step, the watched metrics against their thresholds, the last
decision with its evidence) redrawn every few steps.

How it behaves in a Jupyter kernel, and why:
- Interrupting the cell stops at a step boundary with a checkpoint, as SIGINT does for the command
  line: the kernel interrupts by sending SIGINT to itself, and while the run goes on the daemon's
  stop handler (installed only when run() is called from the main thread; signal handlers can be
  installed nowhere else) turns it into a stop request instead of a KeyboardInterrupt thrown into
  the middle of a Tunix step. From another thread no handler is installed; stop the run with
  `ctl` or a policy budget.
- Nothing process-wide is left behind: the daemon puts the signal handlers back, releases the run
  directory and stops its metrics server when it returns, and the view's thread ends with the run,
  so a second run() in the same kernel (e.g. `resume=True` after an interrupt) works.
- The view's thread runs in a copy of the caller's context, so ipykernel sends its updates to the
  cell that called run() (ipykernel keeps the cell's identity in context variables).
"""

from __future__ import annotations

import contextlib
import contextvars
import html
import json
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autocurriculum import control, runlog
from autocurriculum.daemon import RunOptions, run_daemon
from autocurriculum.policy import Policy, load
from autocurriculum.wiring import TrainerBackend

VIEW_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class CurriculumRun:
    """What one run() did; shown as a short table in a notebook."""

    run_dir: Path
    exit_code: int  # exits.py: 0 finished, stopped or interrupted cleanly
    steps: int  # the step the run ended at (a resumed run counts from the start of the run)
    plan_step: int
    phase: str
    done: bool  # the curriculum's terminal plan step completed
    stopped: bool  # stopped by an interrupt, a signal or request_stop; a checkpoint was written
    transitions: list[dict[str, object]] = field(default_factory=list)  # as in transitions.jsonl

    def _repr_html_(self) -> str:
        state = "curriculum complete" if self.done else "stopped (resume with resume=True)" if self.stopped else \
            f"ended (exit {self.exit_code})"
        rows = "".join(
            f"<tr><td>{t['step']}</td><td>{html.escape(str(t['action']))}</td>"
            f"<td>{html.escape(str(t.get('from_phase')))} &rarr; {html.escape(str(t.get('to_phase')))}</td>"
            f"<td>{html.escape(str(t['reason']))}</td></tr>" for t in self.transitions)
        return (f"<p><b>autocurriculum</b>: {self.steps} steps, phase {html.escape(self.phase)} "
                f"(plan step {self.plan_step + 1}), {state}; run directory {html.escape(str(self.run_dir))}</p>"
                f"<table><tr><th>step</th><th>action</th><th>from &rarr; to</th><th>reason</th></tr>{rows}</table>")


def run(policy: Policy | str | Path, *, run_dir: str | Path | None = None, overrides: Sequence[str] = (),
        resume: bool = False, max_steps: int | None = None, view_every: int = 5,
        backend: TrainerBackend | None = None) -> CurriculumRun:
    """Run the daemon in this process until the curriculum ends, max_steps, or an interrupt.

    `policy` is a policy file (read with `overrides`, `--set` style: "run.max_steps=50") or a parsed
    Policy; `run_dir` defaults to the policy's run.run_dir; `resume=True` continues from the newest
    good checkpoint. In IPython the inline view is redrawn every `view_every` steps (0: no view).
    A bad policy raises PolicyError (its message names the file, the TOML path and the value).
    """
    if isinstance(policy, Policy):
        if overrides:
            raise ValueError("overrides apply to a policy file; pass the file's path, or set the values in the Policy")
        loaded = policy
    else:
        loaded = load(Path(policy), overrides=list(overrides))
    directory = Path(run_dir) if run_dir is not None else Path(loaded.run.run_dir)
    in_main_thread = threading.current_thread() is threading.main_thread()
    view = _InlineView.open(directory, view_every) if view_every > 0 else None
    try:
        result = run_daemon(loaded, directory, RunOptions(
            resume=resume, max_steps=max_steps, overrides=list(overrides), handle_signals=in_main_thread,
            backend=backend))
    finally:
        if view is not None:
            view.close()
    return CurriculumRun(run_dir=directory, exit_code=result.exit_code, steps=result.steps,
                         plan_step=result.plan_step, phase=result.phase, done=result.done,
                         stopped=result.stopped, transitions=list(result.transitions))


def plot(run_dir: str | Path) -> dict[str, Any]:
    """The run report's figures (report_charts.figures), shown as images when a notebook cell returns one.

    The report draws on Figure objects outside pyplot (no global figure registry), and IPython only
    knows how to show a Figure once pyplot's inline backend has been activated; when no image
    formatter for Figures is registered yet, a PNG one is (what `%matplotlib inline` would do).
    """
    from autocurriculum.report_charts import figures

    drawn = figures(Path(run_dir))
    _show_figures_inline()
    return drawn


def _show_figures_inline() -> None:
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import print_figure
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    from functools import partial

    from matplotlib.figure import Figure

    formatters = shell.display_formatter.formatters
    for formatter in formatters.values():
        try:
            formatter.lookup_by_type(Figure)
            return  # the user (or %matplotlib inline) chose how figures show: keep it
        except KeyError:
            continue
    formatters["image/png"].for_type(Figure, partial(print_figure, fmt="png", base64=True))


class _InlineView:
    """A display in the calling cell, redrawn from status.json by a thread while the run goes on."""

    def __init__(self, run_dir: Path, every: int, publish: Any, update: Any) -> None:
        self.run_dir = run_dir
        self.every = every
        self._update = update
        self._display_id = f"autocurriculum-{uuid.uuid4().hex}"
        self._stop = threading.Event()
        self._shown_step = -1
        publish(self._bundle("<div class='autocurriculum-view'><b>autocurriculum</b>: starting ...</div>"),
                raw=True, display_id=self._display_id)
        context = contextvars.copy_context()  # the cell's identity: its updates go to this cell
        self._thread = threading.Thread(target=context.run, args=(self._watch,), name="autocurriculum-view",
                                        daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, run_dir: Path, every: int) -> _InlineView | None:
        """A view when running under IPython with a display (a notebook), else None."""
        try:
            from IPython import get_ipython
            from IPython.display import display, update_display
        except ImportError:
            return None
        shell = get_ipython()
        if shell is None or not hasattr(shell, "kernel"):  # a plain script or a terminal IPython
            return None
        return cls(run_dir, every, display, update_display)

    @staticmethod
    def _bundle(page: str) -> dict[str, str]:
        return {"text/html": page, "text/plain": "autocurriculum run view (HTML)"}

    def _watch(self) -> None:
        while not self._stop.wait(VIEW_POLL_SECONDS):
            try:
                self._redraw(final=False)
            except Exception:  # a view is never a reason to disturb the run; the last redraw says more
                return

    def _redraw(self, final: bool) -> None:
        from autocurriculum.report import live_view_html

        status = control.read_status(self.run_dir)
        step = status.get("step") if status is not None else None
        if status is None or not isinstance(step, int):
            return
        if not final and step < self._shown_step + self.every and not status.get("done"):
            return
        if step == self._shown_step and not final:
            return
        path = self.run_dir / runlog.TRANSITIONS_LOG
        try:
            transitions = list(runlog.read_lines(path)) if path.exists() else []
        except (OSError, ValueError, json.JSONDecodeError):
            transitions = []
        self._update(self._bundle(live_view_html(status, transitions)), raw=True, display_id=self._display_id)
        self._shown_step = step

    def close(self) -> None:
        """Stop the thread and draw the run's last state."""
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(Exception):  # never hide the run's result behind a display problem
            self._redraw(final=True)
