"""The `[training]` knobs as `validate` prints them: resolved, grouped by the Tunix object they reach.

Why print them: a schedule's length, an absent micro-batch size or an unset weight decay each
resolve to a value the file does not show (a default of optax's or Tunix's, or one derived from
`run.max_steps`); a long run should start only after a person has seen the numbers it will use.
The README's policy reference gives Tunix's name for each knob whose name differs.
"""

from __future__ import annotations

from autocurriculum.spec import TrainingSpec


def _number(value: float) -> str:
    return f"{value:g}"


def describe_training(training: TrainingSpec) -> str:
    """The `training:` block of `validate`: every knob that reaches Tunix, with its resolved value."""
    t = training
    if t.decays:
        schedule = (f"{t.lr_schedule}, 0 -> {_number(t.learning_rate)} over warmup_steps={t.warmup_steps}, "
                    f"-> end_value={_number(t.end_value)} at decay_steps={t.decay_steps} (optimizer updates)")
    else:
        schedule = f"constant {_number(t.learning_rate)}"
    clipping = f"max_grad_norm={_number(t.max_grad_norm)}" if t.max_grad_norm > 0 else "no gradient clipping"
    train_micro = t.train_micro_batch_size or t.prompts_per_step  # Tunix's defaults: the whole batch
    micro = {"rollout_micro_batch_size": t.rollout_micro_batch_size or train_micro,
             "train_micro_batch_size": train_micro,
             "compute_logps_micro_batch_size": t.compute_logps_micro_batch_size or train_micro}
    return "\n".join([
        "training:",
        f"  schedule:  {schedule}",
        f"  optimizer: adamw b1={_number(t.b1)} b2={_number(t.b2)} weight_decay={_number(t.weight_decay)}, {clipping}",
        f"  grpo:      generations_per_prompt={t.generations_per_prompt} num_iterations={t.num_iterations} "
        f"beta={_number(t.beta)} epsilon={_number(t.epsilon)}",
        f"  rollout:   temperature={_number(t.temperature)} top_p={_number(t.top_p)} top_k={t.top_k or 'off'} "
        f"max_prompt_tokens={t.max_prompt_tokens} max_new_tokens={t.max_new_tokens}",
        f"  batches:   {t.prompts_per_step} prompts per step; " + " ".join(f"{k}={v}" for k, v in micro.items()),
    ])
