"""The run's TensorBoard side: where the event files go, and the controller's figures at each step.

Why in the daemon: only the daemon knows whether a run starts fresh or resumes, and from which step,
and it writes the metrics line the figures are read from. The trainer owns the writing (Tunix's
metrics logger, `Trainer.open_metrics_log` / `log_figures`); this module decides what and when:
- `metrics.tensorboard_dir` is read relative to the run directory (an absolute path as it is);
- a run that starts at step 1 (fresh, or a resume that found no checkpoint) removes the event files
  a previous run left in it, as it removes its metrics lines; a resumed run keeps them, and the
  trainer voids their steps after the checkpoint (tensorboardX's purge_step), so each step shows
  once in TensorBoard, with the values of the run that went on;
- a directory that cannot be written (a file in its way, no permission) refuses the run before it
  trains (exit 78, one line naming `metrics.tensorboard_dir` and its value);
- the figures of a step (curriculum_figures.py) are written right after its metrics line; a failure
  to write them is a warning, never a reason to stop training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autocurriculum import logs
from autocurriculum.curriculum_figures import phase_order, step_figures
from autocurriculum.exits import BadSetting
from autocurriculum.policy import Plan, Policy
from autocurriculum.trainer import Trainer

EVENT_FILES = "events.out.tfevents.*"


def tensorboard_directory(policy: Policy, run_dir: Path) -> Path | None:
    """Where the run's event files go; None when the policy asks for none."""
    setting = policy.metrics.tensorboard_dir
    if not setting:
        return None
    path = Path(setting).expanduser()
    return path if path.is_absolute() else run_dir / path


class FiguresLog:
    """Opens the trainer's TensorBoard log for a run and writes the controller's figures into it."""

    def __init__(self, policy: Policy, plan: Plan, run_dir: Path, log: Any) -> None:
        self.directory = tensorboard_directory(policy, run_dir)
        self._setting = policy.metrics.tensorboard_dir
        self._phase_index = phase_order(plan)
        self._log = log
        self._trainer: Trainer | None = None
        self._failed = False

    def open(self, trainer: Trainer, first_step: int) -> None:
        """Start writing from `first_step` (the step after the checkpoint the run resumed from, or 1)."""
        if self.directory is None:
            return
        try:
            if first_step == 1:
                for old in self.directory.glob(EVENT_FILES):
                    old.unlink(missing_ok=True)
            trainer.open_metrics_log(self.directory, first_step)
        except OSError as error:
            raise self._refusal(error) from error
        self._trainer = trainer

    def prepare(self) -> None:
        """Create the directory, before the run touches its logs: one it cannot have is refused (78)."""
        if self.directory is not None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise self._refusal(error) from error

    def _refusal(self, error: OSError) -> BadSetting:
        return BadSetting(f"metrics.tensorboard_dir = {self._setting!r}: cannot write event files in "
                          f"{self.directory} ({error.strerror or error})")

    def step(self, record: dict[str, Any], transitions: int) -> None:
        """The figures of the step whose metrics line `record` is; `transitions`: the run's so far."""
        if self._trainer is None:
            return
        try:
            self._trainer.log_figures(int(record["step"]), step_figures(
                record, phase_index=self._phase_index, transitions=transitions))
        except Exception as error:  # TensorBoard is a view on training, never a reason to stop it
            if not self._failed:
                self._failed = True
                self._log.warning(logs.ALERT, alert="tensorboard_failed", step=record["step"],
                                  error=f"{type(error).__name__}: {error}")
