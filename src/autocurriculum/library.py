"""The policy's data, loaded once: every source, every subset the plan uses, and held-out sets.

The daemon asks it for the mixture stream, the tokenizer corpus and warm-start examples of the tiny
quickstart, and the held-out items for evaluation. Generated sources keep their own test split apart
from training (data.split_heldout), so held-out items are never trained on.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from autocurriculum import behaviour_mix
from autocurriculum.data import Item, MixtureStream, apply_subset, load_source, pool_key
from autocurriculum.data.items import DataSettingError
from autocurriculum.data.sources import UNGRADED_KINDS
from autocurriculum.policy import Mixture, MixtureComponent, Policy, expand_plan

CountTokens = Callable[[Sequence[str]], list[int]]


@dataclass(frozen=True)
class Dropped:
    """Items a pool or source lost to the model's limits (`fit_to_model`), for the run's log."""

    part: str  # "source NAME" or "pool KEY"
    dropped: int
    kept: int
    reason: str


class SourceLibrary:
    def __init__(self, policy: Policy, base_dir: Path, cache_dir: Path | None) -> None:
        self.policy = policy
        self.base_dir = base_dir
        self.cache_dir = cache_dir
        self._items: dict[str, list[Item]] = {}
        self.pools: dict[str, list[Item]] = {}
        self._components: dict[str, MixtureComponent] = {}
        for step in expand_plan(policy):
            for component in step.mixture.components:
                key = pool_key(component)
                if key not in self.pools:
                    self._components[key] = component
                    self.pools[key] = apply_subset(self.items(component.source), component.subset,
                                                   policy.run.dataset_seed, component.source)

    def fit_to_model(self, count_tokens: CountTokens, max_prompt_tokens: int) -> list[Dropped]:
        """Drop what the model cannot take, now that its tokenizer is known; what was dropped, and why.

        Why after loading: the data is read (and checked) before the model is built, so a bad file
        is reported in a second; only the model's tokenizer can say how long a text really is.
        - A prompt longer than `training.max_prompt_tokens` would make Tunix's sampler fail mid-run
          (a held-out GSM8K test question, say): such items leave every source and pool.
        - `max_question_tokens` is first applied with whitespace words (no tokenizer yet) and now
          again with the model's tokens, so the subset keeps what its name says.
        A source or pool left with nothing is a setting that cannot work (DataSettingError, exit 78).
        """
        limit = max_prompt_tokens
        for name in self.policy.eval.sources:  # held-out items are sampled by the same model
            self.items(name)
        dropped: list[Dropped] = []
        reason = f"prompt longer than training.max_prompt_tokens = {limit}"
        fits: dict[str, bool] = {}
        for name, items in self._items.items():
            lengths = count_tokens([item.prompt for item in items])
            fits.update((item.id, length <= limit) for item, length in zip(items, lengths))
            kept = [item for item in items if fits[item.id]]
            if not kept:
                raise DataSettingError(f"training.max_prompt_tokens: {limit} tokens hold no prompt of source {name!r} "
                                       f"(its shortest prompt has {min(lengths)} tokens)")
            if len(kept) < len(items):
                dropped.append(Dropped(f"source {name}", len(items) - len(kept), len(kept), reason))
                self._items[name] = kept
        for key, pool in self.pools.items():
            subset = self._components[key].subset
            kept = [item for item in pool if fits.get(item.id, True)]
            why = reason
            if subset.max_question_tokens is not None:
                questions = count_tokens([item.question for item in kept])
                kept = [item for item, length in zip(kept, questions) if length <= subset.max_question_tokens]
                why += f", or question longer than max_question_tokens = {subset.max_question_tokens} model tokens"
            if not kept:
                raise DataSettingError(f"pool {key}: {why}: no item of its {len(pool)} is left")
            if len(kept) < len(pool):
                dropped.append(Dropped(f"pool {key}", len(pool) - len(kept), len(kept), why))
                self.pools[key] = kept
        return dropped

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

    def base_items(self) -> list[Item]:
        """The training items the tokenizer and the warm start learn from: the graded ones.

        Ungraded items (open-ended, no gold) are left out: the warm start's targets end in the gold
        answer, and a base taught on them would differ from the base of the same policy without them,
        so adding open-ended items to phase 3 would change phases 1 and 2 too (and rebuild the cached
        base). They reach the model in phase 3 only, through GRPO.
        """
        return [item for item in self.training_items() if item.graded]

    def recipe(self) -> object:
        """What the tokenizer and warm start depend on (part of the cached base's key): graded sources only."""
        used = sorted({c.source for p in self.policy.phases for c in p.mixture.components
                       if self.policy.sources[c.source].kind not in UNGRADED_KINDS})
        return {
            "sources": {name: dataclasses.asdict(self.policy.sources[name]) for name in used},
            "template": self.policy.training.prompt_template,
            "seed": self.policy.run.dataset_seed,
        }

    def tokenizer_corpus(self) -> list[str]:
        corpus = behaviour_mix.tokenizer_corpus(self.base_items(), seed=self.policy.run.dataset_seed)
        for name in self.policy.eval.sources:
            corpus.extend(item.prompt for item in self.items(name)[:200] if item.graded)
        return corpus

    def warm_start_batches(self, seed: int) -> Iterator[list[tuple[str, str]]]:
        return behaviour_mix.warm_start_batches(self.base_items(), self.policy.model.warm_start, seed)

    def heldout(self) -> list[Item]:
        """A fixed sample of each evaluation source: the same items, in the same order, every time."""
        chosen: list[Item] = []
        for name in self.policy.eval.sources:
            items = self.items(name)
            rnd = random.Random(f"heldout:{name}:{self.policy.run.dataset_seed}")
            count = min(self.policy.eval.items_per_domain, len(items))
            chosen.extend(rnd.sample(items, count))
        return chosen
