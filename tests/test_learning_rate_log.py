"""The learning rate in TensorBoard: the figure optax.inject_hyperparams would record, without its state.

Tunix logs `actor/train/learning_rate` only when the optimizer is wrapped in
`optax.inject_hyperparams`, which changes the optimizer-state tree every checkpoint holds. The
session computes the rate of each update from the schedule instead (optimizer.update_learning_rates);
this checks it against the wrapper itself, update by update, on the schedules a policy can ask for.
"""

from __future__ import annotations

import pytest

from autocurriculum.policy import load

from .conftest import REPO

pytestmark = pytest.mark.slow
TINY = REPO / "policies" / "tiny.toml"
STEPS = 9


@pytest.mark.parametrize("sets", [
    (),  # a constant rate
    ('training.lr_schedule="warmup_cosine"', "training.warmup_steps=4", "training.decay_steps=14",
     "training.end_value=0.0001", "training.num_iterations=2"),
    ('training.lr_schedule="warmup_linear"', "training.warmup_steps=3", "training.decay_steps=7",
     "training.end_value=0.0005"),
    ('training.lr_schedule="warmup_cosine"', "training.warmup_steps=0", "training.decay_steps=6"),
], ids=["constant", "warmup cosine, two updates a step", "warmup linear", "cosine without warmup"])
def test_each_updates_logged_rate_is_what_inject_hyperparams_records(sets: tuple[str, ...]) -> None:
    import jax.numpy as jnp
    import optax

    from autocurriculum.tunix_adapter.optimizer import learning_rate_schedule, update_learning_rates

    training = load(TINY, overrides=sets).training
    wrapped = optax.inject_hyperparams(optax.adamw)(learning_rate=learning_rate_schedule(training), b1=training.b1,
                                                    b2=training.b2, weight_decay=training.weight_decay)
    params = {"w": jnp.ones(3)}
    state = wrapped.init(params)
    recorded = []
    for _ in range(STEPS * training.num_iterations):
        _, state = wrapped.update({"w": jnp.full(3, 0.1)}, state, params)
        recorded.append(float(state.hyperparams["learning_rate"]))  # what Tunix's _try_get_learning_rate reads
    logged = [pair for step in range(1, STEPS + 1) for pair in update_learning_rates(training, step)]
    assert [update for update, _ in logged] == list(range(1, STEPS * training.num_iterations + 1))
    assert [rate for _, rate in logged] == pytest.approx(recorded, rel=1e-6)
    assert (len(set(recorded)) == 1) == (not sets)  # a schedule moves: the comparison is not of constants
