"""The mixture stream: seeded weighted draws over pools whose whole position is a small JSON state.

Each draw picks a pool by weight with the stream's own RNG, then takes that pool's next item in a
seeded shuffled order: no repeat within an epoch, a fresh order (derived from seed and epoch, so it
needs no storage) when a pool runs dry. The mixture can be replaced between batches; the cursors of
every pool survive the swap, so returning to a pool continues where it stopped. `state()` holds the
mixture, the cursors and the RNG state, so a resumed run continues at exactly the same item.

grain's `IterDataset.mix` was not used: its mixing position and per-parent positions live in a state
laid out by the pipeline built at construction (a list indexed by parent), so replacing the weights
or the set of pools at a step boundary would mean building a new pipeline and transplanting entries
of grain's internal state layout; it also has no hook for reporting a new epoch. This class is short,
its state is ours to keep stable, and it draws several hundred thousand items per second.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from autocurriculum.data.items import DataError, Item
from autocurriculum.data.subsets import pool_key
from autocurriculum.json_values import as_float, as_int, as_mapping, as_sequence
from autocurriculum.policy import Mixture, MixtureComponent, SubsetSpec

STATE_KEYS = ("seed", "draws", "cursors", "rng")


class MixtureStream:
    """Seeded weighted draws over pools (pool_key -> items); the whole position is `state()`."""

    def __init__(self, pools: Mapping[str, Sequence[Item]], mixture: Mixture, seed: int,
                 on_epoch: Callable[[str, int], None] | None = None) -> None:
        self.pools = pools
        self.seed = seed
        self.on_epoch = on_epoch  # (pool key, new epoch number), when a pool starts its next epoch
        self._cursors: dict[str, list[int]] = {}  # pool key -> [epoch, position]
        self._draws = 0
        self._rng = np.random.default_rng(seed)
        self._orders: dict[tuple[str, int], np.ndarray] = {}  # a cache; derived from seed and epoch
        self.set_mixture(mixture)

    def set_mixture(self, mixture: Mixture) -> None:
        """Replace the weights and pools drawn from (call it between batches)."""
        if not mixture.components:
            raise DataError("a mixture needs at least one component")
        for component in mixture.components:
            key = pool_key(component)
            if key not in self.pools:
                raise DataError(f"no loaded pool for mixture component {key!r}")
            if not self.pools[key]:
                raise DataError(f"mixture component {key!r}: weight {component.weight} cannot be met, its pool is empty")
            if not (math.isfinite(component.weight) and component.weight > 0):
                raise DataError(f"mixture component {key!r}: weight {component.weight!r} cannot be met "
                                f"(weights must be finite and > 0)")
        self.mixture = mixture
        self._keys = [pool_key(c) for c in mixture.components]
        self._weights = np.array([c.weight for c in mixture.components], dtype=np.float64)
        self._weights /= self._weights.sum()

    def _order(self, key: str, epoch: int) -> np.ndarray:
        digest = int(hashlib.sha256(f"{key}:{self.seed}:{epoch}".encode()).hexdigest()[:16], 16)
        return np.random.default_rng(digest).permutation(len(self.pools[key]))

    def _next_of(self, key: str) -> Item:
        epoch, position = self._cursors.setdefault(key, [0, 0])
        if position >= len(self.pools[key]):
            epoch, position = epoch + 1, 0
            if self.on_epoch is not None:
                self.on_epoch(key, epoch)
        order = self._orders.get((key, epoch))
        if order is None:
            order = self._order(key, epoch)
            self._orders = {(key, epoch): order, **{k: v for k, v in self._orders.items() if k[0] != key}}
        self._cursors[key] = [epoch, position + 1]
        return self.pools[key][int(order[position])]

    def next_batch(self, n: int) -> list[Item]:
        if n < 0:
            raise DataError(f"a batch needs a non-negative size (got {n})")
        picks = self._rng.choice(len(self._keys), size=n, p=self._weights) if len(self._keys) > 1 else [0] * n
        self._draws += n
        return [self._next_of(self._keys[int(p)]) for p in picks]

    # ------------------------------------------------------------ state

    def state(self) -> dict[str, object]:
        """Small and JSON-able: the mixture, every pool's [epoch, position], the RNG state."""
        return {
            "seed": self.seed,
            "draws": self._draws,
            "mixture": mixture_to_json(self.mixture),
            "cursors": {k: list(v) for k, v in self._cursors.items()},
            "rng": self._rng.bit_generator.state,
        }

    def restore(self, state: Mapping[str, object]) -> None:
        """Continue from `state()`: the next batch is the one the saved stream would have drawn."""
        missing = [k for k in STATE_KEYS if k not in state]
        if missing:
            raise DataError(f"stream state: missing {', '.join(missing)}")
        if as_int(state["seed"]) != self.seed:
            raise DataError(f"stream state was saved with seed {state['seed']}, this run uses {self.seed}")
        try:
            cursors = {str(k): _cursor(v) for k, v in as_mapping(state["cursors"]).items()}
            rng = np.random.default_rng(self.seed)
            rng.bit_generator.state = as_mapping(state["rng"])
            mixture = mixture_from_json(state["mixture"]) if "mixture" in state else self.mixture
        except (TypeError, ValueError, KeyError, IndexError) as error:
            raise DataError(f"stream state: malformed ({type(error).__name__}: {error})") from None
        self.set_mixture(mixture)
        self._draws = as_int(state["draws"])
        self._cursors = cursors
        self._rng = rng

    @classmethod
    def from_state(cls, pools: Mapping[str, Sequence[Item]], state: Mapping[str, object],
                   on_epoch: Callable[[str, int], None] | None = None) -> MixtureStream:
        """Rebuild a stream exactly from `state()` (its mixture included)."""
        if "mixture" not in state or "seed" not in state:
            raise DataError("stream state: missing mixture or seed")
        try:
            mixture, seed = mixture_from_json(state["mixture"]), as_int(state["seed"])
        except (TypeError, ValueError, KeyError) as error:
            raise DataError(f"stream state: malformed ({type(error).__name__}: {error})") from None
        stream = cls(pools, mixture, seed, on_epoch)
        stream.restore(state)
        return stream


def mixture_to_json(mixture: Mixture) -> list[dict[str, object]]:
    return [
        {"source": c.source, "weight": c.weight, "start": c.subset.start, "end": c.subset.end,
         "max_question_chars": c.subset.max_question_chars, "max_question_tokens": c.subset.max_question_tokens}
        for c in mixture.components
    ]


def mixture_from_json(data: object) -> Mixture:
    return Mixture(tuple(
        MixtureComponent(
            str(c["source"]), as_float(c["weight"]),
            SubsetSpec(as_float(c["start"]), as_float(c["end"]), _optional_int(c["max_question_chars"]),
                       _optional_int(c["max_question_tokens"])),
        )
        for c in map(as_mapping, as_sequence(data))
    ))


def _optional_int(value: object) -> int | None:
    return None if value is None else as_int(value)


def _cursor(value: object) -> list[int]:
    stored = as_sequence(value)  # [epoch, position]
    return [as_int(stored[0]), as_int(stored[1])]


def to_tunix_batch(items: Sequence[Item]) -> dict[str, np.ndarray]:
    """The batch shape Tunix wants: numpy arrays (not lists) of the prompt and the extra columns."""
    return {
        "prompts": np.array([i.prompt for i in items]),
        "answer": np.array([i.answer for i in items]),
        "domain": np.array([i.domain for i in items]),
        "grading": np.array([i.grading for i in items]),
        "id": np.array([i.id for i in items]),
    }
