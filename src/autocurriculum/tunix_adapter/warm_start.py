"""Full-weight supervised warm start of the tiny Gemma3, so GRPO has behaviour worth correcting.

A randomly initialised model never emits the contract, every GRPO group then earns equal rewards and
the gradient is exactly zero (docs/design.md, "The learning signal"). The quickstart therefore
first teaches its base, with plain next-token loss on the target tokens only, a mixture of
behaviours: mostly free-form answers, some inside the contract, some refusals, plus real arithmetic
skill. Phase 1 then has format to teach and phase 2 has accuracy to raise. Measured recipe: adamw
3e-3 with warm-up and cosine decay, batch 64, 1200 steps, about 0.26 s a step on 2 cores.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from autocurriculum.policy import WarmStartSpec

if TYPE_CHECKING:
    import sentencepiece as spm

Example = tuple[str, str]  # (prompt, target)


def warm_start(
    model: nnx.Module,
    tokenizer: spm.SentencePieceProcessor,
    batches: Iterator[Sequence[Example]],
    spec: WarmStartSpec,
    max_sequence_length: int,
    progress: Callable[[int, float, float], None] | None = None,
) -> float:
    """Train `model` in place for spec.steps batches; return the last loss.

    The sequence length is fitted to the data (the longest of the first batches, rounded up to a
    multiple of 8, at most `max_sequence_length`): step time grows linearly with it.
    """
    bos, eos = tokenizer.bos_id(), tokenizer.eos_id()
    first = [next(batches) for _ in range(8)]
    longest = max(2 + len(tokenizer.encode(p)) + len(tokenizer.encode(t)) for batch in first for p, t in batch)
    length = min(max_sequence_length, -(-longest // 8) * 8)
    batches = itertools.chain(first, batches)
    positions = jnp.broadcast_to(jnp.arange(length), (spec.batch_size, length))
    mask = jnp.broadcast_to(jnp.tril(jnp.ones((length, length), bool)), (spec.batch_size, length, length))
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, spec.learning_rate, max(1, min(100, spec.steps // 10)), max(spec.steps, 2), spec.learning_rate * 0.1
    )
    optimizer = nnx.Optimizer(
        model, optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=0.0)), wrt=nnx.Param
    )

    def loss_fn(model: nnx.Module, tokens: jax.Array, weights: jax.Array) -> jax.Array:
        logits, _ = model(tokens, positions, None, mask)
        log_probs = jax.nn.log_softmax(logits[:, :-1])
        nll = -jnp.take_along_axis(log_probs, tokens[:, 1:, None], -1)[..., 0]
        return jnp.sum(nll * weights[:, :-1]) / jnp.maximum(jnp.sum(weights[:, :-1]), 1.0)

    @nnx.jit
    def train_step(model: nnx.Module, optimizer: nnx.Optimizer, tokens: jax.Array, weights: jax.Array) -> jax.Array:
        loss: jax.Array
        loss, grads = nnx.value_and_grad(loss_fn)(model, tokens, weights)
        optimizer.update(model, grads)
        return loss

    def encode(batch: Sequence[Example]) -> tuple[jax.Array, jax.Array]:
        tokens = np.zeros((spec.batch_size, length), np.int32)
        weights = np.zeros((spec.batch_size, length), np.float32)
        for row, (prompt, target) in enumerate(batch[: spec.batch_size]):
            prompt_ids = [bos, *tokenizer.encode(prompt)]
            sequence = (prompt_ids + tokenizer.encode(target) + [eos])[:length]
            tokens[row, : len(sequence)] = sequence
            # predict the target tokens and EOS: position i predicts token i + 1
            weights[row, len(prompt_ids) - 1 : len(sequence) - 1] = 1.0
        return jnp.asarray(tokens), jnp.asarray(weights)

    loss = float("nan")
    started = time.monotonic()
    for step in range(1, spec.steps + 1):
        tokens, weights = encode(next(batches))
        loss = float(train_step(model, optimizer, tokens, weights))
        if progress is not None and (step % 100 == 0 or step == spec.steps):
            progress(step, loss, time.monotonic() - started)
    return loss
