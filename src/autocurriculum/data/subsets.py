"""Which part of a source a mixture component trains on, and the name of that part (its pool).

A fraction is the curriculum document's `iterable_slice(dataset, start_frac, end_frac)` applied to a
seeded shuffle rather than the file order, so a 25% slice is a random quarter and slices [0, .25)
and [.25, 1) of one seed never overlap. The length filters keep short questions for phase 1.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from autocurriculum.data.items import DataError, Item
from autocurriculum.policy import MixtureComponent, SubsetSpec


def apply_subset(items: Sequence[Item], subset: SubsetSpec, seed: int, source: str,
                 count_tokens: Callable[[str], int] | None = None) -> list[Item]:
    """iterable_slice(items, start, end) on a seeded shuffle, then the length filters.

    Token lengths use `count_tokens` (the model's tokenizer) or, without one, whitespace words: the
    data is loaded before the model, so the library first filters by words and then again by the
    model's tokens once it is built (`SourceLibrary.fit_to_model`).
    """
    if not 0.0 <= subset.start < subset.end <= 1.0:
        raise DataError(f"subset of source {source!r}: need 0 <= start < end <= 1 (got {subset.start}, {subset.end})")
    order = list(range(len(items)))
    random.Random(f"subset:{source}:{seed}").shuffle(order)
    chosen = [items[i] for i in order[int(subset.start * len(items)) : int(subset.end * len(items))]]
    if subset.max_question_chars is not None:
        chosen = [i for i in chosen if len(i.question) <= subset.max_question_chars]
    if subset.max_question_tokens is not None:
        counter = count_tokens or (lambda text: len(text.split()))
        chosen = [i for i in chosen if counter(i.question) <= subset.max_question_tokens]
    if not chosen:
        raise DataError(f"subset of source {source!r} is empty: {describe_subset(subset)} keeps none of its "
                        f"{len(items)} items")
    return chosen


def describe_subset(subset: SubsetSpec) -> str:
    parts = [f"fraction {subset.start:g}-{subset.end:g}"]
    if subset.max_question_chars is not None:
        parts.append(f"max_question_chars {subset.max_question_chars}")
    if subset.max_question_tokens is not None:
        parts.append(f"max_question_tokens {subset.max_question_tokens}")
    return ", ".join(parts)


def pool_key(component: MixtureComponent) -> str:
    """The name of a (source, subset) pool; the stream's cursors and checkpoints are keyed by it."""
    s = component.subset
    return f"{component.source}|{s.start:g}-{s.end:g}|{s.max_question_chars}|{s.max_question_tokens}"
