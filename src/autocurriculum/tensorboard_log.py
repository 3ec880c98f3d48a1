"""TensorBoard event files for a run: Tunix's own metrics and the controller's, in the same files.

Tunix's `MetricsLogger` sends every figure it logs (`actor/train/loss`, `rewards/train/sum`, ...)
through `jax.monitoring.record_scalar` to the backends its `MetricsLoggerOptions` created; its
default TensorBoard backend (metrax's) writes them with a tensorboardX `SummaryWriter`. This module
is such a backend, given to Tunix through the options' `custom_backend` factories, for what the
default one cannot serve:
- Tunix closes its logger at the end of every `learner.train()` call (`RLCluster.close()`), and the
  daemon trains in segments: the default backend would close its writer after the first segment.
  Here `close()` only flushes; the writer lives as long as the run (`finish()`).
- The directory and the first step are known only once the daemon has decided whether it resumes:
  the backend exists from the session's construction (Tunix creates it then) and writes nothing
  until `open(directory, first_step)`. `autocurriculum eval` builds a session and never opens it.
- A resumed run writes the steps after its checkpoint again. The writer is opened with tensorboardX's
  `purge_step` = the first step of this process: TensorBoard (its Python loader and its Rust data
  server) then hides every event of an earlier process at that step or later, so each step shows
  once, with the values of the run that went on.
- Tunix's counters start at 0 in every process: the actor trainer's update count (the step of
  `actor/...`) is shifted by the updates before the resumed step (`step_offsets`); the session sets
  Tunix's global step (the step of `rewards/...`, `completions/...`) to the daemon's itself.
The daemon's figures are written by `log_figures` with the same writer, under Tunix's tag form
`prefix/mode/name` (`curriculum/train/phase_index`), so both appear side by side; a step's values,
Tunix's and the daemon's, reach tensorboardX's writer thread as one event (`_write_pending`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

FIGURES_PREFIX = "curriculum"  # the tag prefix of the controller's figures, beside Tunix's "actor", "rewards"
EVAL_MODE = "eval"  # Tunix's Mode.EVAL
# A TensorBoard tab is at most this far behind (events are handed over once a step). No flush per
# step: it waits for the writer's thread; what a kill loses after the last flush is after the last
# checkpoint too (Tunix's close() at every segment's end flushes), and a resume writes it again.
FLUSH_SECONDS = 5


class TensorboardLog:
    """A Tunix/metrax LoggingBackend (`log_scalar(event, value, step=)`, `close()`) over tensorboardX."""

    def __init__(self) -> None:
        from tensorboardX import SummaryWriter  # Tunix's own TensorBoard backend writes with it too
        from tensorboardX.proto.summary_pb2 import Summary

        self._writer_type = SummaryWriter
        self._summary_type = Summary
        self._writer: SummaryWriter | None = None
        self._lock = threading.Lock()  # Tunix logs from its data thread as well as the main one
        self._step_offsets: dict[str, int] = {}
        self._pending: dict[int, list[Any]] = {}  # step -> Summary values not yet handed to the writer
        self.directory: Path | None = None

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    def open(self, directory: Path, first_step: int, step_offsets: Mapping[str, int] | None = None) -> None:
        """Write from now on into `directory`; events of earlier processes at `first_step` or later are void.

        `step_offsets`: tag prefix -> what to add to the step Tunix gives for tags that start with it.
        """
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._step_offsets = dict(step_offsets or {})
            if self._writer is not None:
                self._write_pending()
                self._writer.close()
            # a unique file name: tensorboardX names files by the second, and a resume can come within one
            self._writer = self._writer_type(logdir=str(directory), purge_step=first_step, flush_secs=FLUSH_SECONDS,
                                             filename_suffix=f".{time.time_ns()}")
            self.directory = directory

    def log_scalar(self, event: str, value: float | np.ndarray, **kwargs: object) -> None:
        """Tunix's figures, as jax.monitoring hands them over: a scalar (or an array, logged as its mean)."""
        step = kwargs.get("step")
        if self._writer is None or not isinstance(step, (int, np.integer)):
            return
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return
        if array.size == 0:
            return
        tag = event.lstrip("/")
        offset = next((shift for prefix, shift in self._step_offsets.items() if tag.startswith(prefix)), 0)
        self._add(tag, float(array.mean()), int(step) + offset)

    def log_figures(self, step: int, figures: Mapping[str, float], *, prefix: str = FIGURES_PREFIX) -> None:
        """The controller's figures of `step` as `prefix/train/name` (non-finite ones left out).

        A name that begins with `eval/` is a held-out figure: `prefix/eval/rest`, as Tunix's eval mode.
        """
        for name, value in figures.items():
            if math.isfinite(value):
                mode, _, rest = name.partition("/") if name.startswith(EVAL_MODE + "/") else ("train", "", name)
                self._add(f"{prefix}/{mode}/{rest}", value, step)
        with self._lock:
            self._write_pending()

    def add(self, tag: str, value: float, step: int) -> None:
        """One scalar at `step` as given (no offset), once the log is open."""
        self._add(tag, value, step)

    def _add(self, tag: str, value: float, step: int) -> None:
        """Keep a scalar (the Summary value add_scalar would write) for the step's one event."""
        value_proto = self._summary_type.Value(tag=tag, simple_value=value)
        with self._lock:
            if self._writer is not None:
                self._pending.setdefault(step, []).append(value_proto)

    def _write_pending(self) -> None:
        """One event per step for what was kept (caller holds the lock).

        Why not add_scalar per figure: tensorboardX hands each event to its writer thread through a
        multiprocessing queue, about 30-60 us an event here; a step's ~55 scalars as one event cost
        one handover (benchmarks/tensorboard.py). TensorBoard reads every value of an event's Summary.
        """
        if self._writer is not None:
            for step in sorted(self._pending):
                self._writer.file_writer.add_summary(self._summary_type(value=self._pending[step]), step)
        self._pending.clear()

    def close(self) -> None:
        """What Tunix calls at the end of each training segment: write and flush, and keep writing afterwards."""
        with self._lock:
            self._write_pending()
            if self._writer is not None:
                self._writer.flush()

    def finish(self) -> None:
        """Close the event file for good (the end of the run)."""
        with self._lock:
            self._write_pending()
            if self._writer is not None:
                self._writer.close()
                self._writer = None
