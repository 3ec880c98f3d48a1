"""The `[training]` knobs reach Tunix: read back from the objects a real `GrpoSession` builds.

A tiny random Gemma3 (one layer, a 96-piece tokenizer trained here) is enough: nothing is trained,
the session is only built. The optimizer Tunix holds (`actor_trainer.optimizer.tx`) is driven by
hand on a three-number parameter, so its updates show the schedule, the clipping, the betas and the
weight decay; GRPOConfig, RolloutConfig and RLTrainingConfig are read as Tunix keeps them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from tunix.models.gemma3 import model as gemma3_model

from autocurriculum.policy import Policy, load
from autocurriculum.tunix_adapter.environment import make_mesh
from autocurriculum.tunix_adapter.model import ModelBundle, tiny_config
from autocurriculum.tunix_adapter.optimizer import learning_rate_schedule
from autocurriculum.tunix_adapter.session import GrpoSession
from autocurriculum.tunix_adapter.tokenizer import load_sentencepiece, train_sentencepiece

from .conftest import REPO

pytestmark = pytest.mark.slow

TINY = REPO / "policies" / "tiny.toml"
SHAPES = ("model.tiny.layers=1", "model.tiny.embed_dim=32", "model.tiny.hidden_dim=64", "model.tiny.head_dim=16",
          "model.tiny.vocab_size=96", "training.max_prompt_tokens=16", "training.max_new_tokens=8",
          "training.prompts_per_step=4")
KNOBS = ('training.lr_schedule="warmup_cosine"', "training.learning_rate=0.01", "training.warmup_steps=4",
         "training.decay_steps=10", "training.end_value=0.001", "training.max_grad_norm=0.5",
         "training.weight_decay=0.25", "training.b1=0.8", "training.b2=0.95", "training.num_iterations=2",
         "training.epsilon=0.3", "training.top_k=7", "training.rollout_micro_batch_size=2",
         "training.train_micro_batch_size=2", "training.compute_logps_micro_batch_size=1")


def _zero_rewards(prompts: Sequence[str], completions: Sequence[str], **kwargs: object) -> list[float]:
    return [0.0] * len(completions)


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = [f"question {i}: what is {i} plus {i + 1}? answer {2 * i + 1}" for i in range(200)]
    return train_sentencepiece(corpus, 96, tmp_path_factory.mktemp("tokenizer") / "tokenizer.model")


def _session(tokenizer_path: Path, *overrides: str) -> tuple[Policy, GrpoSession]:
    policy = load(TINY, overrides=(*SHAPES, *overrides))
    tokenizer = load_sentencepiece(tokenizer_path, "model.tokenizer")
    config = tiny_config(policy.model, tokenizer.get_piece_size())
    mesh = make_mesh(1, 1)
    with mesh:
        base = gemma3_model.Gemma3(config, rngs=nnx.Rngs(0))
    bundle = ModelBundle(tokenizer, base, config, mesh, (tokenizer.eos_id(),), "test")
    return policy, GrpoSession(bundle, policy, [_zero_rewards])


def _updates(tx: optax.GradientTransformation, gradients: Sequence[float], param: float = 0.0) -> list[np.ndarray]:
    """The updates `tx` gives, step after step, for a 3-vector parameter held at `param` and gradients g*(1,1,1)."""
    params = {"w": jnp.full(3, param)}
    state = tx.init(params)
    out = []
    for g in gradients:
        update, state = tx.update({"w": jnp.full(3, g)}, state, params)
        out.append(np.asarray(update["w"]))
    return out


def test_knobs_reach_the_optimizer_grpo_config_rollout_config_and_micro_batches(tokenizer_path: Path) -> None:
    policy, session = _session(tokenizer_path, *KNOBS)
    held = session.cluster.actor_trainer.optimizer.tx
    # train micro-batches of 2 in a batch of 4: Tunix accumulates two of them, wrapping the optimizer in MultiSteps
    assert isinstance(held, optax.MultiSteps)
    tx = held.inner_opt
    # schedule: constant unit gradients make adam's normalised step 1, so each update is -lr(step)
    peak, end = 0.01, 0.001
    expected = [peak * step / 4 for step in range(4)]  # linear warmup from 0 over warmup_steps=4
    expected += [end + (peak - end) * 0.5 * (1 + math.cos(math.pi * min(step - 4, 6) / 6)) for step in range(4, 12)]
    got = [-float(u[0]) for u in _updates(tx, [1.0] * 12)]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-9)
    assert got[4] == pytest.approx(peak, rel=1e-5) and got[10] == got[11] == pytest.approx(end, rel=1e-5)
    # clipping: a gradient 1000x the others is clipped to norm 0.5 like them, so adam's step stays 1 x lr
    steps = [1.0] * 5 + [1000.0]
    assert -float(_updates(tx, steps)[-1][0]) == pytest.approx(expected[5], rel=1e-5)
    unclipped = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, peak, 4, 10, end), b1=0.8, b2=0.95, weight_decay=0.25)
    assert -float(_updates(unclipped, steps)[-1][0]) < 0.9 * expected[5]  # without clipping the spike shows
    # betas: after one unit gradient (clipped to 0.5/sqrt(3) a coordinate) adam's moments are (1-b1)g and (1-b2)g^2
    params = {"w": jnp.zeros(3)}
    _, state = tx.update({"w": jnp.ones(3)}, tx.init(params), params)
    g = 0.5 / math.sqrt(3)
    np.testing.assert_allclose(np.asarray(optax.tree_utils.tree_get(state, "mu")["w"]), (1 - 0.8) * g, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(optax.tree_utils.tree_get(state, "nu")["w"]), (1 - 0.95) * g * g, rtol=1e-5)
    # weight decay: at the peak step, a parameter of 2 adds lr x 0.25 x 2 to the update
    decayed = _updates(tx, [1.0] * 5, param=2.0)[-1]
    assert -float(decayed[0]) == pytest.approx(peak * (1 + 0.25 * 2.0), rel=1e-5)
    # GRPO, rollout and micro-batches, as Tunix holds them
    algo = session.learner.algo_config
    assert (algo.num_iterations, algo.epsilon, algo.num_generations) == (2, 0.3, policy.training.generations_per_prompt)
    assert session.cluster.cluster_config.rollout_config.top_k == 7
    config = session.cluster.cluster_config.training_config
    assert (config.rollout_micro_batch_size, config.train_micro_batch_size, config.compute_logps_micro_batch_size,
            config.mini_batch_size, config.gradient_accumulation_steps) == (2, 2, 1, 4, 2)


def test_a_policy_without_knobs_trains_as_before(tokenizer_path: Path) -> None:
    """No knob set: exactly optax.adamw(learning_rate), one iteration, epsilon 0.2, no top-k, whole-batch micro-batches."""
    policy, session = _session(tokenizer_path)
    tx = session.cluster.actor_trainer.optimizer.tx
    before = optax.adamw(policy.training.learning_rate)
    steps = [1.0, -3.0, 1000.0, 0.5]
    for ours, theirs in zip(_updates(tx, steps, param=1.5), _updates(before, steps, param=1.5), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    init = {"w": jnp.zeros(3)}
    assert jax.tree.structure(tx.init(init)) == jax.tree.structure(before.init(init))  # same state: checkpoints restore
    algo = session.learner.algo_config
    assert (algo.num_iterations, algo.epsilon) == (1, 0.2)
    assert session.cluster.cluster_config.rollout_config.top_k is None
    config = session.cluster.cluster_config.training_config
    assert (config.rollout_micro_batch_size, config.train_micro_batch_size, config.compute_logps_micro_batch_size,
            config.mini_batch_size) == (None, None, None, None)



@pytest.mark.parametrize(("schedule", "warmup", "expected"), [
    # linear warmup from 0 over 2 updates, then linear decay to end_value at decay_steps=6, then flat
    ("warmup_linear", 2, [0.0, 0.005, 0.01, 0.00775, 0.0055, 0.00325, 0.001, 0.001]),
    ("warmup_linear", 0, [0.01, 0.0085, 0.007, 0.0055, 0.004, 0.0025, 0.001, 0.001]),
    # no warmup: cosine from the peak straight away
    ("warmup_cosine", 0, [0.001 + 0.009 * 0.5 * (1 + math.cos(math.pi * min(s, 6) / 6)) for s in range(8)]),
])
def test_each_schedule_shape(schedule: str, warmup: int, expected: list[float]) -> None:
    training = load(TINY, overrides=(f'training.lr_schedule="{schedule}"', "training.learning_rate=0.01",
                                     f"training.warmup_steps={warmup}", "training.decay_steps=6",
                                     "training.end_value=0.001")).training
    rate = learning_rate_schedule(training)
    assert callable(rate)
    np.testing.assert_allclose([float(rate(step)) for step in range(8)], expected, rtol=1e-5, atol=1e-9)
