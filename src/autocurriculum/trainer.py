"""What the daemon needs from a trainer, and nothing more: the `Trainer` protocol.

Why a protocol: the daemon's step boundary, resume and restore paths are the riskiest code of a run,
and with the real trainer (Tunix GRPO on a JAX model) they could only be tested by training a model.
Written against this protocol, the same daemon runs the real `GrpoSession` in production and, in the
fast tests, a scripted trainer that needs no JAX. Pure: importing this module imports no JAX or Tunix.

The contract the daemon relies on:
- `train(batches)` consumes a finite iterable of batches and returns when it is exhausted. For each
  batch it draws, the trainer calls the current reward functions once, then the batch hook it was
  opened with once (Tunix's `metric_fns` signature, with the summed rewards and the GRPO advantages
  it will train on), before it asks for the next batch: that is what makes "the stream is asked for
  batch k+1" the step boundary, and the hook is where a batch's records are emitted — exactly once.
- `set_reward_fns(fns)` takes effect from the next batch drawn.
- `set_batch_number(n)` is called just before batch n (1-based) is handed over (sampling keys).
- `save(dir)` / `restore(dir)` write and read the trainable state (`dir` does not exist on save).
- `tunix_metrics()` is the trainer's own latest figures (loss, KL, ...), possibly empty.
- `generate(prompts, temperature=, seed=)` samples one completion per prompt (held-out evaluation).
- `open_metrics_log(dir, first_step)`: from now on the trainer's own metrics (Tunix's loss, KL,
  rewards) go to TensorBoard event files in `dir`; events an earlier process wrote there for steps
  >= `first_step` are void (a resumed run writes them again). Never called when the policy sets no
  `metrics.tensorboard_dir`.
- `log_figures(step, figures)`: the controller's figures of `step` (curriculum_figures.py), written
  beside the trainer's own; nothing before `open_metrics_log`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

RewardFn = Callable[..., list[float]]
"""A reward function with Tunix's signature: fn(prompts=, completions=, **dataset_columns) -> one value each."""

BatchHook = Callable[..., Mapping[str, object]]
"""Tunix's metric_fn: hook(prompts=, completions=, rewards=, advantages=, **dataset_columns) -> metrics."""

Batch = Mapping[str, object]
"""One training batch as Tunix wants it: column name -> numpy array ("prompts", "answer", "domain", "id")."""


class Trainer(Protocol):
    def train(self, batches: Iterable[Batch]) -> None: ...

    def set_reward_fns(self, reward_fns: Sequence[RewardFn]) -> None: ...

    def set_batch_number(self, number: int) -> None: ...

    def save(self, directory: Path) -> None: ...

    def restore(self, directory: Path) -> None: ...

    def tunix_metrics(self) -> dict[str, float]: ...

    def generate(self, prompts: Sequence[str], *, temperature: float, seed: int) -> list[str]: ...

    def open_metrics_log(self, directory: Path, first_step: int) -> None: ...

    def log_figures(self, step: int, figures: Mapping[str, float]) -> None: ...
