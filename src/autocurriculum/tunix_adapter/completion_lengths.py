"""Completion lengths in tokens: the rollout's own counts, else the tokenizer's in one batched call.

Why: the length rewards and the rambling figure need every completion's length in tokens. Tunix's
rollout has just generated those tokens, and re-encoding the decoded text cost 40-90 µs a completion
with sentencepiece — most of the whole reward pass — while one batched encode saves only ~15%. So the
session records each rollout's texts with the number of tokens generated for each (what Tunix's
own `completions/mean_length` counts, the stop token excluded), and the reward pass looks them up.
Texts no rollout produced (held-out evaluation samples through the sampler; a test's own texts) are
encoded, all of a batch in one call.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol


class Encoder(Protocol):
    def encode(self, input: list[str]) -> list[list[int]]: ...


class CompletionLengths:
    """Maps the latest rollout's texts to their generated token counts; counts anything else itself."""

    def __init__(self, tokenizer: Encoder) -> None:
        self._tokenizer = tokenizer
        self._lock = threading.Lock()
        self._generated: dict[str, int] = {}

    def record(self, texts: Sequence[str], tokens: Sequence[Sequence[int]]) -> None:
        """The rollout just produced `texts` from `tokens` (unpadded, one sequence each)."""
        generated = dict(zip(texts, map(len, tokens)))
        with self._lock:
            self._generated = generated

    def count(self, texts: Sequence[str]) -> list[int]:
        """The length of each text: the rollout's count when it produced the text, else the tokenizer's."""
        with self._lock:
            generated = self._generated
        lengths = list(map(generated.get, texts))
        if None in lengths:
            missing = list(dict.fromkeys(text for text, length in zip(texts, lengths) if length is None))
            counted = dict(zip(missing, map(len, self._tokenizer.encode(missing))))
            lengths = [counted[text] if length is None else length for text, length in zip(texts, lengths)]
        return lengths  # type: ignore[return-value]  # every None was replaced above
