"""The five named reward functions, and the dispatcher that also turns completions into records.

Tunix calls each reward function separately, one after another, on the same batch (the same
`completions` list object) and sums them with nansum. The dispatcher parses each completion once per
batch, computes the whole active reward set at the first call, emits one CompletionRecord per
completion to its sink, and hands each function its column. The active set reaches the functions
through the closures the learner holds (`reward_fns(reward_set)`), never through a process global.

Defaults (from the tiny-model curriculum measured in DESIGN.md) and why:
- punish_refusal: penalty -1.0 — a refusal must cost as much as failing the format, so dodging is
  never the safe option;
- strict_format_gate: fail -1.0, pass 0.5 — a gate, not a prize: failing costs more than passing
  earns, and passing gives GRPO graded signal within a group where only some comply;
- light_length_penalty: per_token -0.005 past budget 20 tokens, floor -0.5 — nudges away from
  rambling without drowning the format signal;
- check_answer_strict: correct 1.0, wrong 0.0 — binary exact match, no partial or ratio credit,
  and nothing when the contract fails (the gate already says why);
- penalize_length: per_token_correct -0.005, per_token_wrong -0.02 past budget 20, floor -1.0 —
  four times stronger on wrong answers: be brief when wrong.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import numpy as np

from autocurriculum.contract import ParsedCompletion, answer_is_correct, is_hallucination, parse_completion
from autocurriculum.observation import CompletionRecord
from autocurriculum.policy import RewardSpec

REWARD_PARAMETERS: Final[Mapping[str, Mapping[str, float]]] = {
    "punish_refusal": {"penalty": -1.0},
    "strict_format_gate": {"fail": -1.0, "pass": 0.5},
    "light_length_penalty": {"per_token": -0.005, "budget": 20.0, "floor": -0.5},
    "check_answer_strict": {"correct": 1.0, "wrong": 0.0},
    "penalize_length": {"per_token_correct": -0.005, "per_token_wrong": -0.02, "budget": 20.0, "floor": -1.0},
}
RAMBLING_BUDGET_FACTOR: Final = 3.0  # rambling: text outside the tags, or over 3x the length budget
DEFAULT_LENGTH_BUDGET: Final = 20.0


def _params(spec: RewardSpec) -> dict[str, float]:
    return {**REWARD_PARAMETERS[spec.name], **spec.params}


def reward_value(name: str, p: Mapping[str, float], parsed: ParsedCompletion, correct: bool | None) -> float:
    """One reward for one parsed completion (pure). Always a finite float."""
    if name == "punish_refusal":
        value = p["penalty"] if parsed.refused else 0.0
    elif name == "strict_format_gate":
        value = p["pass"] if parsed.strict_ok else p["fail"]
    elif name == "light_length_penalty":
        value = max(p["floor"], p["per_token"] * max(0.0, parsed.length_tokens - p["budget"]))
    elif name == "check_answer_strict":
        value = p["correct"] if (parsed.strict_ok and correct) else p["wrong"]
    elif name == "penalize_length":
        rate = p["per_token_correct"] if (parsed.strict_ok and correct) else p["per_token_wrong"]
        value = max(p["floor"], rate * max(0.0, parsed.length_tokens - p["budget"]))
    else:
        raise KeyError(f"unknown reward function {name!r}")
    return float(value) if math.isfinite(value) else 0.0


def _column(kwargs: Mapping[str, object], key: str, n: int, default: str) -> list[str]:
    values = kwargs.get(key)
    if values is None:
        return [default] * n
    return [str(v) for v in np.asarray(values).reshape(-1).tolist()]


class RewardDispatcher:
    """Scores batches with the active reward set and records what the model emitted."""

    def __init__(
        self,
        count_tokens: Callable[[str], int] | None = None,
        on_batch: Callable[[list[CompletionRecord], float], None] | None = None,
        length_budget: float = DEFAULT_LENGTH_BUDGET,
    ) -> None:
        self.count_tokens = count_tokens
        self.on_batch = on_batch
        self.length_budget = length_budget
        self._batch: object = None  # the completions list of the batch being scored (kept alive)
        self._columns: dict[str, list[float]] = {}

    def observe(
        self, completions: Sequence[str], answers: Sequence[str] | None, domains: Sequence[str],
        reward_set: Sequence[RewardSpec] = (),
    ) -> list[CompletionRecord]:
        """Parse and score completions into records (also used by held-out evaluation)."""
        specs = [(s.name, _params(s)) for s in reward_set]
        records = []
        for index, text in enumerate(completions):
            text = text if isinstance(text, str) else str(text)
            parsed = parse_completion(text, self.count_tokens)
            domain = domains[index]
            gold = answers[index] if answers is not None else ""
            correct = answer_is_correct(parsed.answer, gold, domain) if (gold and parsed.answer) else (None if not gold else False)
            budget = next((p["budget"] for _, p in specs if "budget" in p), self.length_budget)
            records.append(
                CompletionRecord(
                    domain=domain,
                    contract_ok=parsed.strict_ok,
                    extracted=parsed.extracted,
                    refused=parsed.refused,
                    length_tokens=parsed.length_tokens,
                    rambling=parsed.outside_chars > 0 or parsed.length_tokens > RAMBLING_BUDGET_FACTOR * budget,
                    correct=correct,
                    hallucination=is_hallucination(parsed, correct),
                    empty=parsed.empty,
                    text_hash=hash(text),
                    rewards={name: reward_value(name, p, parsed, correct) for name, p in specs},
                )
            )
        return records

    def _score(self, reward_set: Sequence[RewardSpec], completions: Sequence[str], kwargs: Mapping[str, object]) -> None:
        started = time.perf_counter()
        n = len(completions)
        records = self.observe(completions, _column(kwargs, "answer", n, ""), _column(kwargs, "domain", n, "math"), reward_set)
        self._columns = {spec.name: [r.rewards[spec.name] for r in records] for spec in reward_set}
        self._batch = completions
        if self.on_batch is not None:
            self.on_batch(records, time.perf_counter() - started)

    def reward_fns(self, reward_set: Sequence[RewardSpec]) -> list[Callable[..., list[float]]]:
        """Tunix-signature functions for this reward set, named like the rewards."""
        reward_set = tuple(reward_set)

        def make(name: str) -> Callable[..., list[float]]:
            def reward(prompts: Sequence[str], completions: Sequence[str], **kwargs: object) -> list[float]:
                if completions is not self._batch or name not in self._columns:
                    self._score(reward_set, completions, kwargs)
                return list(self._columns[name])

            reward.__name__ = name
            reward.__qualname__ = name
            return reward

        return [make(spec.name) for spec in reward_set]
