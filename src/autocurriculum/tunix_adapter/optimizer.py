"""The actor's optimizer from `[training]`: optax.adamw on a learning-rate schedule, clipped first if asked.

Why its own module: the session hands Tunix one `optax.GradientTransformation` (RLTrainingConfig's
`actor_optimizer`), and what goes into it is the whole meaning of six policy knobs. It is built as
Tunix's own CLI builds it from `optimizer_config` (`optax.adamw` with `b1`, `b2`, `weight_decay`, a
`warmup_cosine_decay_schedule`, `max_grad_norm` clipping), so a Tunix user's numbers mean the same
here. A policy that sets none of them gets exactly `optax.adamw(learning_rate)`, the optimizer (and
optimizer state) every run had before these knobs existed.

Steps are optimizer updates (optax's count): one per daemon step times `num_iterations`. The count
lives in the optimizer state, which checkpoints hold, so a resumed run continues its schedule.
"""

from __future__ import annotations

import optax

from autocurriculum.policy import TrainingSpec


def learning_rate_schedule(training: TrainingSpec) -> optax.ScalarOrSchedule:
    """The learning rate: a constant, or a linear warmup from 0 to `learning_rate` and a decay to `end_value`.

    `decay_steps` is the whole length, warmup included (optax's `warmup_cosine_decay_schedule`);
    after it the rate stays at `end_value`.
    """
    if not training.decays:
        return training.learning_rate
    peak, warmup, decay = training.learning_rate, training.warmup_steps, training.decay_steps
    if training.lr_schedule == "warmup_cosine":
        if warmup == 0:  # optax's warmup would warn about a zero-length linear piece
            return optax.cosine_decay_schedule(peak, decay, alpha=training.end_value / peak)
        return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, decay, end_value=training.end_value)
    decline = optax.linear_schedule(peak, training.end_value, decay - warmup)
    if warmup == 0:
        return decline
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), decline], [warmup])


def update_learning_rates(training: TrainingSpec, step: int) -> list[tuple[int, float]]:
    """(update, learning rate) for each optimizer update of daemon step `step` (1-based, `num_iterations` a step).

    Why computed: Tunix logs `learning_rate` only from an optimizer wrapped in
    `optax.inject_hyperparams`, and that wrapper's state is another tree than the one every checkpoint
    holds, so wrapping would stop old checkpoints from restoring. inject_hyperparams records
    `schedule(count)` before the count advances, so update u used `schedule(u - 1)`: the same figure.
    """
    schedule = learning_rate_schedule(training)
    iterations = training.num_iterations
    return [(update, float(schedule(update - 1)) if callable(schedule) else float(schedule))
            for update in range((step - 1) * iterations + 1, step * iterations + 1)]


def actor_optimizer(training: TrainingSpec) -> optax.GradientTransformation:
    """optax.adamw on the schedule, with `optax.clip_by_global_norm(max_grad_norm)` before it when set."""
    adamw = optax.adamw(learning_rate_schedule(training), b1=training.b1, b2=training.b2,
                        weight_decay=training.weight_decay)
    if training.max_grad_norm > 0:
        return optax.chain(optax.clip_by_global_norm(training.max_grad_norm), adamw)
    return adamw
