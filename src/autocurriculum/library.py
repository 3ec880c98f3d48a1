"""The policy's data, loaded once: every source, every subset the plan uses, and held-out sets.

The daemon asks it for the mixture stream, the tokenizer corpus and warm-start examples of the tiny
quickstart, and the held-out items for evaluation. Generated sources keep their own test split apart
from training (data.split_heldout), so held-out items are never trained on.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator
from pathlib import Path

from autocurriculum import behaviour_mix
from autocurriculum.data import Item, MixtureStream, apply_subset, load_source, pool_key
from autocurriculum.policy import Mixture, Policy, expand_plan


class SourceLibrary:
    def __init__(self, policy: Policy, base_dir: Path, cache_dir: Path | None) -> None:
        self.policy = policy
        self.base_dir = base_dir
        self.cache_dir = cache_dir
        self._items: dict[str, list[Item]] = {}
        self.pools: dict[str, list[Item]] = {}
        for step in expand_plan(policy):
            for component in step.mixture.components:
                key = pool_key(component)
                if key not in self.pools:
                    self.pools[key] = apply_subset(self.items(component.source), component.subset,
                                                   policy.run.dataset_seed, component.source)

    def items(self, source: str) -> list[Item]:
        if source not in self._items:
            self._items[source] = load_source(
                self.policy.sources[source], seed=self.policy.run.dataset_seed, base_dir=self.base_dir,
                template=self.policy.training.prompt_template, cache_dir=self.cache_dir,
            )
        return self._items[source]

    def stream(self, mixture: Mixture, seed: int, on_epoch: Callable[[str, int], None] | None = None) -> MixtureStream:
        return MixtureStream(self.pools, mixture, seed, on_epoch)

    def training_items(self) -> list[Item]:
        """Every item any plan step trains on (for the tokenizer and the warm start)."""
        seen: dict[str, Item] = {}
        for pool in self.pools.values():
            for item in pool:
                seen.setdefault(item.id, item)
        return list(seen.values())

    def recipe(self) -> object:
        """What the tokenizer and warm start depend on (part of the cached base's key)."""
        used = sorted({c.source for p in self.policy.phases for c in p.mixture.components})
        return {
            "sources": {name: dataclasses.asdict(self.policy.sources[name]) for name in used},
            "template": self.policy.training.prompt_template,
            "seed": self.policy.run.dataset_seed,
        }

    def tokenizer_corpus(self) -> list[str]:
        corpus = behaviour_mix.tokenizer_corpus(self.training_items(), seed=self.policy.run.dataset_seed)
        for name in self.policy.eval.sources:
            corpus.extend(item.prompt for item in self.items(name)[:200])
        return corpus

    def warm_start_batches(self, seed: int) -> Iterator[list[tuple[str, str]]]:
        return behaviour_mix.warm_start_batches(self.training_items(), self.policy.model.warm_start, seed)

    def heldout(self) -> list[Item]:
        """A fixed sample of each evaluation source: the same items, in the same order, every time."""
        chosen: list[Item] = []
        for name in self.policy.eval.sources:
            items = self.items(name)
            rnd = random.Random(f"heldout:{name}:{self.policy.run.dataset_seed}")
            count = min(self.policy.eval.items_per_domain, len(items))
            chosen.extend(rnd.sample(items, count))
        return chosen
