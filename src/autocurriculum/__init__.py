"""autocurriculum: drive a Tunix GRPO run through a behaviour -> correctness -> domains curriculum."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autocurriculum.notebook import CurriculumRun
    from autocurriculum.policy import Policy

__version__ = "0.1.0"


def run(policy: Policy | str | Path, *, run_dir: str | Path | None = None, overrides: Sequence[str] = (),
        resume: bool = False, max_steps: int | None = None, view_every: int = 5) -> CurriculumRun:
    """Run the curriculum in this process (a notebook cell, a script) and return what happened.

    See autocurriculum.notebook.run: interrupting the cell stops at a step boundary with a
    checkpoint, and an inline view is redrawn every `view_every` steps. Imported lazily, so
    `import autocurriculum` loads neither JAX nor Tunix.
    """
    from autocurriculum.notebook import run as run_in_process

    return run_in_process(policy, run_dir=run_dir, overrides=overrides, resume=resume, max_steps=max_steps,
                          view_every=view_every)


def plot(run_dir: str | Path) -> dict[str, Any]:
    """The run report's charts as matplotlib Figures, by name, for a notebook cell.

    timeline, watched (criteria and plateau), rewards, learnability, heldout, step_time; read from
    the run directory's files only, so it works on a running run. Imported lazily: `import
    autocurriculum` stays free of matplotlib (and of JAX and Tunix).
    """
    from autocurriculum.notebook import plot as plot_in_notebook

    return plot_in_notebook(run_dir)
