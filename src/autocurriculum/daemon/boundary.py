"""The step boundary: the observations a step leaves behind, and applying a decision to the run.

Tunix's data thread asks the stream for batch k+1 only after it has scored batch k, so at that moment
the rewards of batch k are all in (`StepObservations`) and the step can be judged. What decide()
chose is applied right there, before batch k+1 is drawn (`apply_action`): a new mixture in the stream
OR a new reward list in the trainer, never both in one step — each plan step changes one factor.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from autocurriculum.controller import ActionKind, Decision
from autocurriculum.data import MixtureStream
from autocurriculum.observation import RecordBatch
from autocurriculum.policy import Factor, Plan
from autocurriculum.rewards import RewardDispatcher
from autocurriculum.trainer import Trainer


class StepObservations:
    """The reward batches of the step in progress, handed over by the dispatcher from Tunix's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: list[RecordBatch] = []
        self._seconds = 0.0
        self._sample: tuple[Sequence[str], Sequence[str], RecordBatch] | None = None

    def on_batch(self, batch: RecordBatch, seconds: float = 0.0) -> None:
        with self._lock:
            self._batches.append(batch)
            self._seconds += seconds

    def on_texts(self, prompts: Sequence[str], completions: Sequence[str], records: RecordBatch) -> None:
        """The step's first batch of texts, kept for the few completions a person reads (completion_samples.py)."""
        with self._lock:
            if self._sample is None:
                self._sample = (prompts, completions, records)

    def take_sample(self) -> tuple[Sequence[str], Sequence[str], RecordBatch] | None:
        """(prompts, completions, records) of the step's first batch, or None; the next step starts empty."""
        with self._lock:
            sample, self._sample = self._sample, None
        return sample

    def take(self) -> tuple[RecordBatch, float]:
        """The step's records in order and the seconds spent scoring them; the buffer starts empty again."""
        with self._lock:
            batches, self._batches = self._batches, []
            seconds, self._seconds = self._seconds, 0.0
        return RecordBatch.concat(batches), seconds


@dataclass(frozen=True)
class Applied:
    """What applying a decision changed: the curriculum's end, a restore to come, or one factor."""

    done: bool = False
    restore_before: int | None = None  # a collapse restore, done when the segment has ended
    factor: Factor = Factor.NONE


def apply_action(decision: Decision, plan: Plan, stream: MixtureStream, trainer: Trainer,
                 dispatcher: RewardDispatcher) -> Applied:
    """Apply `decision` to the stream or the trainer before the next batch is drawn."""
    action = decision.action
    if action.kind is ActionKind.DONE:
        return Applied(done=True)
    if action.kind is ActionKind.RESTORE:
        return Applied(restore_before=action.before_step)
    if action.from_step == action.to_step:
        return Applied()
    target = plan[action.to_step]
    if action.factor is Factor.DATA:
        stream.set_mixture(target.mixture)
    elif action.factor is Factor.REWARDS:
        trainer.set_reward_fns(dispatcher.reward_fns(target.rewards))
    else:  # pragma: no cover - decide() never moves without naming the factor
        raise RuntimeError(f"decide() moved from plan step {action.from_step} to {action.to_step} without a factor")
    return Applied(factor=action.factor)
