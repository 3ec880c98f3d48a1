"""Wiring: the one build sequence from a policy to a stream, a reward dispatcher and a trainer.

Why one function: the daemon, `autocurriculum eval` and the overhead benchmark all need the same
parts built the same way (where the caches live, the data before the model, the first plan step's
mixture and rewards). Written once, a change to the order or to a cache path cannot drift apart.

The order matters: the data is loaded first, so a bad data file is reported in a second, before JAX
and Tunix are even imported; then the trainer backend builds the model, and the data is fitted to
it (prompts its sampler cannot take are dropped and logged, `SourceLibrary.fit_to_model`) before
the stream is built from it. The real backend
(`grpo_backend`) imports the Tunix adapter lazily, so importing this module stays light; the fast
tests pass a backend of their own.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from autocurriculum.data import MixtureStream
from autocurriculum.library import SourceLibrary
from autocurriculum.logs import EPOCH_STARTED, ITEMS_DROPPED, REWARD_FAILED
from autocurriculum.observation import RecordBatch
from autocurriculum.policy import Plan, Policy, expand_plan
from autocurriculum.rewards import CountTokens, RewardDispatcher
from autocurriculum.trainer import BatchHook, RewardFn, Trainer
from autocurriculum.user_rewards import resolve_user_rewards

EventLog = Callable[..., None]
"""log(event, **fields): one structured event (see logs.py for the names and their fields)."""

OpenTrainer = Callable[[Sequence[RewardFn], BatchHook], Trainer]
"""Opens the trainer with its first reward functions and the once-per-batch hook that emits the records."""


class TrainerBackend(Protocol):
    """Builds the model side: returns the tokenizer's counter and a function that opens the trainer.

    Two stages because the reward dispatcher needs the token counter before the trainer can be given
    its first reward functions.
    """

    def __call__(self, policy: Policy, base_dir: Path, cache_root: Path, library: SourceLibrary,
                 log: EventLog) -> tuple[CountTokens, OpenTrainer]: ...


@dataclass
class RunParts:
    """Everything a run (or an evaluation) is built from, built in the order above."""

    policy: Policy
    plan: Plan
    base_dir: Path
    cache_root: Path
    library: SourceLibrary
    stream: MixtureStream
    dispatcher: RewardDispatcher
    trainer: Trainer


def policy_dir(policy: Policy) -> Path:
    """The directory relative paths in the policy are read from: the policy file's own."""
    return Path(policy.file).resolve().parent


def cache_root(policy: Policy) -> Path:
    """model.cache_dir with ~ expanded, relative to the policy file's directory."""
    root = Path(os.path.expanduser(policy.model.cache_dir))
    return root if root.is_absolute() else policy_dir(policy) / root


def grpo_backend(policy: Policy, base_dir: Path, cache_root: Path, library: SourceLibrary,
                 log: EventLog) -> tuple[CountTokens, OpenTrainer]:
    """The real trainer: the policy's model (built or loaded, cached) in a Tunix GRPO session."""
    from autocurriculum.tunix_adapter import GrpoSession, build_model_bundle, configure_jax

    configure_jax(cache_root / "jax-compilation")
    bundle = build_model_bundle(policy, base_dir, corpus=library.tokenizer_corpus, corpus_recipe=library.recipe(),
                                warm_examples=library.warm_start_batches, log=log)

    def open_trainer(reward_fns: Sequence[RewardFn], batch_hook: BatchHook) -> Trainer:
        return GrpoSession(bundle, policy, reward_fns, batch_hook)

    return bundle.lengths.count, open_trainer


def build_run(policy: Policy, *, log: EventLog, plan: Plan | None = None,
              on_batch: Callable[[RecordBatch, float], None] | None = None,
              backend: TrainerBackend | None = None,
              on_texts: Callable[[Sequence[str], Sequence[str], RecordBatch], None] | None = None) -> RunParts:
    """Build the parts of a run on `plan` (default: the policy's) positioned at its first step.

    Raises data.DataError, FileNotFoundError or ValueError for bad data, and PolicyError for a user's
    reward function that cannot be imported or called, before any model is built.
    """
    plan = plan if plan is not None else expand_plan(policy)
    base_dir, cache = policy_dir(policy), cache_root(policy)
    library = SourceLibrary(policy, base_dir=base_dir, cache_dir=cache / "data")
    user_functions = resolve_user_rewards(policy, base_dir)  # a broken user reward: refused before the model

    def on_epoch(source: str, epoch: int) -> None:
        log(EPOCH_STARTED, source=source, epoch=epoch)

    count_tokens, open_trainer = (backend or grpo_backend)(policy, base_dir, cache, library, log)
    for dropped in library.fit_to_model(count_tokens, policy.training.max_prompt_tokens):
        log(ITEMS_DROPPED, **dataclasses.asdict(dropped))
    stream = library.stream(plan[0].mixture, seed=policy.run.seed, on_epoch=on_epoch)
    def on_reward_error(name: str, problem: str) -> None:
        log(REWARD_FAILED, reward=name, problem=problem)

    dispatcher = RewardDispatcher(count_tokens=count_tokens, on_batch=on_batch, on_texts=on_texts,
                                  user_functions=user_functions, on_reward_error=on_reward_error)
    trainer = open_trainer(dispatcher.reward_fns(plan[0].rewards), dispatcher.observe_batch)
    return RunParts(policy, plan, base_dir, cache, library, stream, dispatcher, trainer)


def structlog_events(logger: Any) -> EventLog:
    """An EventLog over a structlog logger: a failing reward function at warning level, the rest at info."""

    def log(event: str, **fields: object) -> None:
        (logger.warning if event == REWARD_FAILED else logger.info)(event, **fields)

    return log
