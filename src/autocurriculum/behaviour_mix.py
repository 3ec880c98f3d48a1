"""Supervised warm-start examples for the tiny quickstart base: mixed behaviour, real skill.

GRPO cannot teach from nothing: a group whose completions all earn the same reward has zero
advantage (docs/design.md, "The learning signal"). So the quickstart's base is first taught, by
plain supervised learning, a mixture of behaviours a pretrained model plausibly has: mostly free-form
answers ("7 + 5 = 12. The answer is 12."), some inside the contract, some refusals. Phase 1 then
has a format to enforce and refusals to remove, and the base has real arithmetic skill for phase 2
to sharpen. This module only builds the (prompt, target) text pairs; tunix_adapter.warm_start
trains on them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Protocol

from autocurriculum.policy import WarmStartSpec

REFUSAL = "I cannot help with that."


class WarmItem(Protocol):
    """What the warm start reads of an item (read-only, so frozen data.Item fits)."""

    @property
    def prompt(self) -> str: ...
    @property
    def answer(self) -> str: ...
    @property
    def solution(self) -> str: ...


def first_answer(answer: str) -> str:
    """The first accepted answer (QA golds may hold several, joined by the unit separator)."""
    return answer.split("\x1f", 1)[0]


def freeform_target(item: WarmItem) -> str:
    answer = first_answer(item.answer)
    solution = item.solution.strip().rstrip(".")
    return f"{solution}. The answer is {answer}." if solution else f"The answer is {answer}."


def contract_target(item: WarmItem) -> str:
    answer = first_answer(item.answer)
    reasoning = item.solution.strip() or f"The answer is {answer}."
    return f"<reasoning>{reasoning}</reasoning><answer>{answer}</answer>"


def warm_target(item: WarmItem, rnd: random.Random, spec: WarmStartSpec) -> str:
    draw = rnd.random()
    if draw < spec.freeform_share:
        return freeform_target(item)
    if draw < spec.freeform_share + spec.contract_share:
        return contract_target(item)
    return REFUSAL


def warm_start_batches(items: Sequence[WarmItem], spec: WarmStartSpec, seed: int) -> Iterator[list[tuple[str, str]]]:
    """Endless batches of (prompt, target), drawn with replacement, deterministic per seed."""
    if not items:
        raise ValueError("warm start: the policy's training sources produced no items")
    rnd = random.Random(seed)
    while True:
        batch = []
        for _ in range(spec.batch_size):
            item = items[rnd.randrange(len(items))]
            batch.append((item.prompt, warm_target(item, rnd, spec)))
        yield batch


def tokenizer_corpus(items: Sequence[WarmItem], seed: int, limit: int = 6000) -> list[str]:
    """Text for the tokenizer: prompts with every kind of target, so every piece it needs exists."""
    rnd = random.Random(seed)
    chosen = list(items) if len(items) <= limit else rnd.sample(list(items), limit)
    lines = []
    for index, item in enumerate(chosen):
        lines.append(f"{item.prompt} {freeform_target(item)}")
        lines.append(contract_target(item))
        if index % 10 == 0:  # every behaviour the warm start teaches appears in proportion
            lines.append(f"{item.prompt} {REFUSAL}")
    return lines
