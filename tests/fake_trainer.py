"""A scripted trainer for the fast tier: the real daemon, stream and reward dispatcher, no model, no JAX.

`ScriptedTrainer` implements `autocurriculum.trainer.Trainer` the way Tunix's GRPO learner uses it:
for each batch the daemon's segment yields, it repeats every prompt `generations_per_prompt` times,
asks a script for the completions (a function of the batch number, the item and the generation),
and calls the current reward functions with the dataset columns, exactly once per batch, before it
draws the next batch. Its "weights" are a counter of batches trained, saved and restored through
`save`/`restore`, so a test sees which checkpoint a restore loaded. It records what the daemon
applied to it (reward sets, by batch number) for the single-factor test.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autocurriculum.library import SourceLibrary
from autocurriculum.observation import grpo_advantages
from autocurriculum.policy import Policy
from autocurriculum.rewards import CountTokens
from autocurriculum.trainer import Batch, BatchHook, RewardFn, Trainer
from autocurriculum.wiring import EventLog, OpenTrainer

Script = Callable[[int, str, str, int], str]
"""script(batch_number, prompt, gold_answer, generation) -> completion text."""


def contract(answer: str, reasoning: str = "add the numbers") -> str:
    return f"<reasoning>{reasoning}</reasoning><answer>{answer}</answer>"


def good(_number: int, _prompt: str, answer: str, generation: int) -> str:
    """A model that keeps the contract and is right; generations differ in their reasoning."""
    return contract(answer, f"add the numbers, attempt {generation}")


def free_form(_number: int, _prompt: str, answer: str, generation: int) -> str:
    """A model that answers outside the contract."""
    return f"The answer is {answer}, I think ({generation})."


def empty(_number: int, _prompt: str, _answer: str, _generation: int) -> str:
    """A collapsed model: nothing but end-of-sequence."""
    return ""


def by_batch(default: Script, **ranges: tuple[range, Script]) -> Script:
    """A script that follows `default` except for the batch numbers of the named ranges."""

    def script(number: int, prompt: str, answer: str, generation: int) -> str:
        for batches, other in ranges.values():
            if number in batches:
                return other(number, prompt, answer, generation)
        return default(number, prompt, answer, generation)

    return script


@dataclass
class ScriptedTrainer:
    generations: int
    script: Script = good
    reward_fns: list[RewardFn] = field(default_factory=list)
    batch_number: int = 0
    trained_batches: int = 0  # the "weights": how many batches this trainer has learned from
    reward_sets: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)  # (batch number, names) per set
    restored: list[int] = field(default_factory=list)  # trained_batches read back by each restore
    hooks: dict[int, Callable[[], object]] = field(default_factory=dict)  # batch number -> called after training on it
    fail_save: bool = False
    batch_hook: BatchHook | None = None  # Tunix's metric_fns entry: called once per batch after the rewards
    copy_per_reward: bool = False  # hand each reward function its own copy of the completions list
    metrics_logs: list[tuple[Path, int]] = field(default_factory=list)  # open_metrics_log's (directory, first step)
    figures: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # log_figures' (step, figures)

    def train(self, batches: Iterable[Batch]) -> None:
        for batch in batches:
            prompts = [str(p) for p in np.repeat(np.asarray(batch["prompts"]), self.generations)]
            columns = {key: np.repeat(np.asarray(value), self.generations) for key, value in batch.items()
                       if key != "prompts"}
            answers = [str(a) for a in columns["answer"]]
            completions = [self.script(self.batch_number, prompt, answer, i % self.generations)
                           for i, (prompt, answer) in enumerate(zip(prompts, answers))]
            # as Tunix's learner: every reward function, their nansum, its GRPO advantages, then the hook
            totals = np.zeros(len(completions))
            for reward_fn in self.reward_fns:
                given = list(completions) if self.copy_per_reward else completions
                values = reward_fn(prompts=prompts, completions=given, **columns)
                assert len(values) == len(completions)
                totals = np.nansum([totals, np.asarray(values, dtype=float)], axis=0)
            if self.batch_hook is not None:
                advantages = grpo_advantages(totals.tolist(), self.generations) if self.generations >= 2 else None
                self.batch_hook(prompts=prompts, completions=completions, rewards=totals,
                                advantages=np.asarray(advantages) if advantages is not None else None, **columns)
            self.trained_batches += 1
            if self.batch_number in self.hooks:
                self.hooks[self.batch_number]()

    def set_reward_fns(self, reward_fns: Sequence[RewardFn]) -> None:
        self.reward_fns = list(reward_fns)
        self.reward_sets.append((self.batch_number, tuple(fn.__name__ for fn in reward_fns)))

    def set_batch_number(self, number: int) -> None:
        self.batch_number = number

    def save(self, directory: Path) -> None:
        if self.fail_save:
            raise OSError(28, "No space left on device")
        directory.mkdir()
        (directory / "weights.json").write_text(json.dumps({"trained_batches": self.trained_batches}))

    def restore(self, directory: Path) -> None:
        self.trained_batches = int(json.loads((directory / "weights.json").read_text())["trained_batches"])
        self.restored.append(self.trained_batches)

    def tunix_metrics(self) -> dict[str, float]:
        return {"loss": 1.0 / (1 + self.trained_batches)}

    def generate(self, prompts: Sequence[str], *, temperature: float, seed: int) -> list[str]:
        return [self.script(self.batch_number, prompt, "", 0) for prompt in prompts]

    def open_metrics_log(self, directory: Path, first_step: int) -> None:
        self.metrics_logs.append((directory, first_step))

    def log_figures(self, step: int, figures: Mapping[str, float]) -> None:
        self.figures.append((step, dict(figures)))


def count_words(texts: Sequence[str]) -> list[int]:
    return [len(text.split()) for text in texts]


@dataclass
class ScriptedBackend:
    """A `wiring.TrainerBackend` that opens one `ScriptedTrainer` (kept here for the test to inspect)."""

    script: Script = good
    hooks: dict[int, Callable[[], object]] = field(default_factory=dict)
    fail_save: bool = False
    copy_per_reward: bool = False
    trainer: ScriptedTrainer | None = None

    def __call__(self, policy: Policy, base_dir: Path, cache_root: Path, library: SourceLibrary,
                 log: EventLog) -> tuple[CountTokens, OpenTrainer]:
        def open_trainer(reward_fns: Sequence[RewardFn], batch_hook: BatchHook) -> Trainer:
            self.trainer = ScriptedTrainer(policy.training.generations_per_prompt, self.script,
                                           hooks=self.hooks, fail_save=self.fail_save, batch_hook=batch_hook,
                                           copy_per_reward=self.copy_per_reward)
            self.trainer.set_reward_fns(reward_fns)
            return self.trainer

        return count_words, open_trainer


def send_signal(signum: int) -> Callable[[], None]:
    """A hook that sends this process `signum` (what `kill` or systemd would do)."""
    return lambda: os.kill(os.getpid(), signum)
