"""One GRPO training run in Tunix: actor (LoRA on the base), reference, rollout, learner.

`GrpoSession` is the real `autocurriculum.trainer.Trainer`: what the daemon needs and nothing more.
- `train(batches)`: run GRPO over a finite iterable of batches and return when it is exhausted.
  The daemon feeds one segment (up to the next checkpoint) at a time, so that when it checkpoints
  nothing is in flight: Tunix's data thread draws ahead of the optimizer (docs/design.md, "The step
  boundary"), and only at the end of `train()` are model, optimizer and stream cursor consistent.
- `set_reward_fns(fns)`: the learner reads `reward_manager.reward_fns` on every batch, so replacing
  the list between two draws changes the rewards from the next batch on.
- the batch hook is Tunix's own once-per-batch `metric_fns` entry: the learner calls it after the
  rewards with their sum and its GRPO advantages; the daemon's records are emitted there, once.
- completion lengths: each rollout's generated token counts are recorded in the bundle's
  `CompletionLengths`, so the reward pass does not tokenize the completions again.
- fresh sampler keys: Tunix's rollout defaults to PRNGKey(0) on every call, which draws nearly the
  same completions each step; each batch gets a key derived from (run seed, batch number), so a
  resumed run samples exactly as the uninterrupted one would.
- `[training]`'s knobs go to the Tunix objects that own them, under Tunix's names: the optimizer
  (optimizer.py) to RLTrainingConfig's `actor_optimizer`, with its micro-batch sizes; `num_iterations`
  and `epsilon` to GRPOConfig; `top_k` to RolloutConfig (and to evaluation's sampler).
- `save(dir)` / `restore(dir)`: the trainable parameters and the optimizer state through Orbax; in a
  multi-process run every process calls both on the same (shared) directory, as Orbax requires.
- TensorBoard: Tunix's metrics logger is given one backend (autocurriculum.tensorboard_log), created with the
  session and silent until the daemon `open_metrics_log`s it with the run's directory and first step;
  Tunix's loss, rewards and lengths and the daemon's `log_figures` then go to the same event files.
- `tunix_metrics()`: Tunix's own figures (loss, KL, reward means) through its external metrics
  logger hook, plus the wall seconds spent so far in each part of a GRPO step (rollout, reference
  log-probs, actor update), timed around RLCluster's own calls: Tunix 0.1.7 records them only as
  profiler spans, and a user tuning a real model needs to know which part to shrink. Tunix prepares
  the next batch (rollout, reference) in a thread while the actor updates, so the parts may overlap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
import qwix
from flax import nnx
from tunix.generate.tokenizer_adapter import TokenizerAdapter
from tunix.rl.grpo.grpo_learner import GRPOConfig, GRPOLearner
from tunix.rl.rl_cluster import ClusterConfig, MetricsBuffer, RLCluster, RLTrainingConfig, Role
from tunix.rl.rollout.base_rollout import RolloutConfig, RolloutOutput
from tunix.sft.metrics_logger import MetricsLoggerOptions

from autocurriculum.policy import Policy
from autocurriculum.tensorboard_log import TensorboardLog
from autocurriculum.trainer import Batch, BatchHook, RewardFn
from autocurriculum.tunix_adapter.model import ModelBundle
from autocurriculum.tunix_adapter.optimizer import actor_optimizer, update_learning_rates

TRAIN_FIGURES = ("loss", "kl", "perplexity")  # the actor trainer's own, read from its metrics logger
TRAIN_FIGURES_FILE = "train_figures.json"  # beside the Orbax tree in a checkpoint's model directory
UNBOUNDED_STEPS = 10**9  # the daemon, not Tunix, decides when training stops
# the parts of a GRPO step and the RLCluster method each is timed around
TIMED_PARTS = {"rollout": "generate", "reference": "get_ref_per_token_logps", "update": "update_actor"}


def place_on_mesh(model: nnx.Module, mesh: jax.sharding.Mesh) -> None:
    """Put every parameter of `model` on `mesh`, in place, as its partition annotations ask."""
    state = nnx.state(model)
    shardings = jax.tree.map(
        lambda spec: jax.sharding.NamedSharding(mesh, spec), nnx.get_partition_spec(state),
        is_leaf=lambda leaf: isinstance(leaf, jax.sharding.PartitionSpec),
    )
    nnx.update(model, jax.device_put(state, shardings))


class GrpoSession:
    def __init__(self, bundle: ModelBundle, policy: Policy, reward_fns: Sequence[RewardFn],
                 batch_hook: BatchHook | None = None) -> None:
        self.bundle = bundle
        self.policy = policy
        training = policy.training
        self._seed = policy.run.seed
        self._batch_number = 0
        self._tunix_figures: dict[str, float] = {}
        self._restored_train_figures: dict[str, float] = {}  # loss/KL saved with the restored checkpoint
        self._figures_lock = threading.Lock()
        self.tensorboard = TensorboardLog()  # Tunix's logging backend: silent until open_metrics_log
        mesh = bundle.mesh
        with mesh:
            self.actor = self._build_actor()
        self.rollout_config = RolloutConfig(
            max_tokens_to_generate=training.max_new_tokens,
            max_prompt_length=training.max_prompt_tokens,
            kv_cache_size=training.max_prompt_tokens + training.max_new_tokens + 16,
            eos_tokens=list(bundle.eos_ids),
            temperature=training.temperature,
            top_p=training.top_p,
            top_k=training.top_k or None,  # Tunix: None (or 0) is no top-k filtering
        )
        self.cluster = RLCluster(
            actor=self.actor,
            reference=bundle.base,
            tokenizer=TokenizerAdapter(bundle.tokenizer),
            cluster_config=ClusterConfig(
                role_to_mesh={Role.ACTOR: mesh, Role.REFERENCE: mesh, Role.ROLLOUT: mesh},
                rollout_engine="vanilla",
                training_config=RLTrainingConfig(
                    actor_optimizer=actor_optimizer(training),
                    eval_every_n_steps=UNBOUNDED_STEPS,
                    max_steps=UNBOUNDED_STEPS,
                    # Tunix needs a mini-batch for train micro-batches: the whole batch, one update per step
                    mini_batch_size=training.prompts_per_step if training.train_micro_batch_size else None,
                    train_micro_batch_size=training.train_micro_batch_size,
                    rollout_micro_batch_size=training.rollout_micro_batch_size,
                    compute_logps_micro_batch_size=training.compute_logps_micro_batch_size,
                    metrics_logging_options=MetricsLoggerOptions(
                        log_dir="", backend_kwargs={"custom_backend": [lambda: self.tensorboard]}),
                ),
                rollout_config=self.rollout_config,
            ),
        )
        self.cluster.with_external_metrics_logger(self._on_tunix_metrics)
        self._wrap_rollout_with_fresh_keys()
        self._part_seconds = dict.fromkeys(TIMED_PARTS, 0.0)
        self._time_step_parts()
        self._record_completion_lengths()
        self.learner = GRPOLearner(
            rl_cluster=self.cluster,
            algo_config=GRPOConfig(num_generations=training.generations_per_prompt, beta=training.beta,
                                   num_iterations=training.num_iterations, epsilon=training.epsilon),
            reward_fns=list(reward_fns),
            metric_fns=[batch_hook] if batch_hook is not None else None,
        )

    # ------------------------------------------------------------------ model

    def _build_actor(self) -> nnx.Module:
        """The actor: LoRA on the base, sharing the base's arrays with the reference.

        RLCluster keeps a model that is already on its mesh as it is and reshards any other into new
        arrays (`RLCluster._load_model`). A base built on one device was therefore copied twice,
        once for the reference and once inside the actor, and Tunix warned that they "do not share
        the same backbone". Placing the base on the mesh first, then wrapping it with LoRA, leaves one
        copy of the base weights that both roles read (Tunix's `is_sharing_backbone` holds).
        """
        lora = self.policy.model.lora
        base = self.bundle.base
        place_on_mesh(base, self.bundle.mesh)
        if lora is None:
            actor: nnx.Module = nnx.clone(base)
            return actor
        lora_actor: nnx.Module = qwix.apply_lora_to_model(
            base,
            qwix.LoraProvider(module_path=lora.target_modules, rank=lora.rank, alpha=lora.alpha),
            rngs=nnx.Rngs(self._seed + 1),
            **base.get_model_input(),
        )
        return lora_actor

    @property
    def trained_model(self) -> nnx.Module:
        """The actor the trainer updates (RLCluster may hold a copy of what it was given)."""
        model: nnx.Module = self.cluster.actor_trainer.model
        return model

    @property
    def trainable_filter(self) -> type:
        return nnx.LoRAParam if self.policy.model.lora is not None else nnx.Param

    # ------------------------------------------------------------------ rollout keys

    def _wrap_rollout_with_fresh_keys(self) -> None:
        """Each rollout call its own key: from (run seed, batch number), and the call's place in the batch.

        With `rollout_micro_batch_size` Tunix samples a batch in several calls; the first keeps the
        batch's key (so a run without micro-batches samples as before), the others fold in their index.
        """
        rollout = self.cluster.rollout
        original = rollout.generate
        calls = {"batch": -1, "index": 0}

        def generate(prompts: list[str], rollout_config: RolloutConfig, **kwargs: Any) -> RolloutOutput:
            if calls["batch"] != self._batch_number:
                calls["batch"], calls["index"] = self._batch_number, 0
            key = jax.random.PRNGKey(self._seed * 1_000_003 + self._batch_number)
            if calls["index"]:
                key = jax.random.fold_in(key, calls["index"])
            calls["index"] += 1
            return original(prompts, dataclasses.replace(rollout_config, seed=key), **kwargs)

        rollout.generate = generate

    def _record_completion_lengths(self) -> None:
        """After each batch's rollout (all its micro-batches), record its texts' generated token counts."""
        original = self.cluster.generate

        def generate(*args: Any, **kwargs: Any) -> RolloutOutput:
            output: RolloutOutput = original(*args, **kwargs)
            self.bundle.lengths.record(output.text, output.tokens)
            return output

        self.cluster.generate = generate  # an instance attribute shadows the method

    def _time_step_parts(self) -> None:
        """Add each RLCluster call's wall time (results ready: JAX dispatches asynchronously) to its part."""
        for part, method in TIMED_PARTS.items():
            original = getattr(self.cluster, method)

            def timed(*args: Any, _original: Callable[..., Any] = original, _part: str = part, **kwargs: Any) -> Any:
                started = time.perf_counter()
                result = jax.block_until_ready(_original(*args, **kwargs))
                with self._figures_lock:
                    self._part_seconds[_part] += time.perf_counter() - started
                return result

            setattr(self.cluster, method, timed)

    def set_batch_number(self, number: int) -> None:
        """Called by the stream just before it yields batch `number` (1-based)."""
        self._batch_number = number

    # ------------------------------------------------------------------ training

    def train(self, batches: Iterable[Batch]) -> None:
        try:
            with self.bundle.mesh:
                self.learner.train(batches)
        finally:
            self._keep_tensorboard_listening()

    def _keep_tensorboard_listening(self) -> None:
        """After a segment: Tunix's logger `close()` clears jax.monitoring's listeners; listen again, once.

        (JAX 0.10's `clear_event_listeners` happens to leave the scalar listeners in place; this does
        not depend on it either way.)
        """
        listener = self.tensorboard.log_scalar
        with contextlib.suppress(AssertionError, ValueError):  # it had been cleared
            jax.monitoring.unregister_scalar_listener(listener)
        jax.monitoring.register_scalar_listener(listener)

    # ------------------------------------------------------------------ TensorBoard

    def open_metrics_log(self, directory: Path, first_step: int) -> None:
        """Tunix's metrics and the daemon's figures go to TensorBoard event files in `directory` from now on.

        Every figure of batch k is at step k, as in metrics.jsonl: Tunix logs a batch's rewards and
        lengths at its global step, which counts batches from 0 in each process (so it is set to the
        daemon's first step here: RLCluster reads it only to label metrics), and the actor's loss/KL
        at its update count, which restarts at 0 too and is shifted by the updates before
        `first_step` (`num_iterations` a batch).
        """
        self.cluster.global_steps = first_step
        updates_before = (first_step - 1) * self.policy.training.num_iterations
        self.tensorboard.open(directory, first_step, step_offsets={"actor/": updates_before})

    def log_figures(self, step: int, figures: Mapping[str, float]) -> None:
        """The controller's figures of `step`, in the event files Tunix's figures go to; and the learning rate."""
        self.tensorboard.log_figures(step, figures)
        self._log_learning_rate(step)

    def _log_learning_rate(self, step: int) -> None:
        """`actor/train/learning_rate` of each optimizer update of `step`, at Tunix's step for it.

        Computed from the schedule (optimizer.update_learning_rates says why): Tunix logs it only from
        an optimizer whose state checkpoints do not hold.
        """
        if self.tensorboard.is_open:
            for update, rate in update_learning_rates(self.policy.training, step):
                self.tensorboard.add("actor/train/learning_rate", rate, update)

    def set_reward_fns(self, reward_fns: Sequence[RewardFn]) -> None:
        self.learner.reward_manager.reward_fns = list(reward_fns)

    def _on_tunix_metrics(self, buffer: MetricsBuffer) -> None:
        figures: dict[str, float] = {}
        for name, (value, op) in buffer.metrics.items():
            try:
                array = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                continue  # prompts / completions text
            if array.size == 0:
                continue
            scalar = float(op(array)) if op is not None else float(array.mean())
            if np.isfinite(scalar) and name != "trajectory_ids":
                figures[name.replace("/", "_")] = scalar
        with self._figures_lock:
            self._tunix_figures = figures  # this step's: a reward of an earlier set must not linger

    def tunix_metrics(self) -> dict[str, float]:
        """Tunix's latest figures: rewards, completion lengths, and the actor's loss and KL."""
        with self._figures_lock:
            figures = dict(self._tunix_figures)
            figures.update({f"seconds_total_{part}": round(value, 3) for part, value in self._part_seconds.items()})
        figures.update(self._train_figures())
        return figures

    def _train_figures(self) -> dict[str, float]:
        """The actor's latest loss, KL and perplexity; after a restore, the checkpoint's until Tunix logs anew.

        Why the checkpoint's: a step's line carries the update of the step before it (Tunix's data thread
        draws ahead), so the first line after a resume must show the last update before the checkpoint,
        as the uninterrupted run's line does, not nothing.
        """
        figures = dict(self._restored_train_figures)
        logger = self.cluster.actor_trainer.metrics_logger
        for name in TRAIN_FIGURES:
            for prefix in ("actor", "global"):
                if logger.metric_exists(prefix, name, "train"):
                    history = logger.get_metric_history(prefix, name, "train")
                    if len(history):
                        figures[name] = float(np.asarray(history[-1]).mean())
                    break
        return figures

    # ------------------------------------------------------------------ sampling for evaluation

    def generate(self, prompts: Sequence[str], *, temperature: float, seed: int) -> list[str]:
        """Sample one completion per prompt from the current actor (greedy when temperature is 0)."""
        training = self.policy.training
        sampler = self.cluster.rollout._sampler  # the vanilla rollout's Sampler over the actor
        kwargs: dict[str, object] = {
            "input_strings": list(prompts),
            "max_generation_steps": training.max_new_tokens,
            "max_prompt_length": training.max_prompt_tokens,
            "eos_tokens": list(self.bundle.eos_ids),
            "echo": False,
        }
        if temperature > 0:
            kwargs.update(temperature=temperature, top_p=training.top_p, top_k=training.top_k or None,
                          seed=jax.random.PRNGKey(seed))
        with self.cluster._get_mesh_and_logical_axis_rules_cm(Role.ROLLOUT):
            output = sampler(**kwargs)
        return list(output.text)

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint_tree(self) -> dict[str, object]:
        optimizer = self.cluster.actor_trainer.optimizer
        return {
            "params": nnx.to_pure_dict(nnx.state(self.trained_model, self.trainable_filter)),
            "optimizer": nnx.to_pure_dict(nnx.state(optimizer, nnx.optimizer.OptState)),
        }

    def save(self, directory: Path) -> None:
        """Write trainable parameters and optimizer state to `directory` (which must not exist)."""
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(directory.absolute(), self._checkpoint_tree())
        checkpointer.wait_until_finished()
        checkpointer.close()
        if jax.process_index() == 0:  # several processes: Orbax writes every process's shards, one of us the rest
            (directory / TRAIN_FIGURES_FILE).write_text(json.dumps(self._train_figures()), encoding="utf-8")

    def _restore_target(self, leaf: Any) -> Any:
        """Where a checkpointed array goes back to: where it is now, or replicated on the mesh.

        Why: before the first update the optimizer's state (its step count, say) sits on one local
        device, uncommitted, and Tunix shards it onto the mesh when training starts; restored there it
        would be committed to that device, and with a mesh spanning several processes Tunix's
        sharding of it fails ("Received incompatible devices for jitted computation", measured).
        """
        struct = ocp.utils.to_shape_dtype_struct(leaf)
        if isinstance(struct, jax.ShapeDtypeStruct) and not isinstance(struct.sharding, jax.sharding.NamedSharding):
            replicated = jax.sharding.NamedSharding(self.bundle.mesh, jax.sharding.PartitionSpec())
            return jax.ShapeDtypeStruct(struct.shape, struct.dtype, sharding=replicated)
        return struct

    def restore(self, directory: Path) -> None:
        target = self._checkpoint_tree()
        abstract = jax.tree.map(self._restore_target, target)
        checkpointer = ocp.StandardCheckpointer()
        restored = checkpointer.restore(directory.absolute(), abstract)
        checkpointer.close()
        figures = directory / TRAIN_FIGURES_FILE
        self._restored_train_figures = (
            {str(k): float(v) for k, v in json.loads(figures.read_text(encoding="utf-8")).items()}
            if figures.exists() else {}
        )
        params = nnx.state(self.trained_model, self.trainable_filter)
        nnx.replace_by_pure_dict(params, restored["params"])
        nnx.update(self.trained_model, params)
        optimizer = self.cluster.actor_trainer.optimizer
        opt_state = nnx.state(optimizer, nnx.optimizer.OptState)
        nnx.replace_by_pure_dict(opt_state, restored["optimizer"])
        nnx.update(optimizer, opt_state)
