"""autocurriculum: drive a Tunix GRPO run through a behaviour -> correctness -> domains curriculum."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"


def plot(run_dir: str | Path) -> dict[str, Any]:
    """The run report's charts as matplotlib Figures, by name, for a notebook cell.

    timeline, watched (criteria and plateau), rewards, learnability, heldout, step_time; read from
    the run directory's files only, so it works on a running run. Imported lazily: `import
    autocurriculum` stays free of matplotlib (and of JAX and Tunix).
    """
    from autocurriculum.report import figures

    return figures(Path(run_dir))
