"""What the controller sees: per-completion records and the per-step roll-up.

The reward call is the only place completions are seen, so the reward dispatcher turns each
completion into one `CompletionRecord`; `summarize` rolls a batch of them up into one
`StepObservation`. Everything downstream (controller, exporter, metrics log, replay) reads these
names and nothing else, so a metric is spelt the same in a policy criterion, a Prometheus series
and a dashboard panel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

# Step-level metrics, all computed from the completions of one step (one batch).
# Rates are in [0, 1]; lengths are in tokens.
EXTRACTION_RATE: Final = "extraction_rate"  # an <answer> tag with non-empty content was found
STRICT_COMPLIANCE: Final = "strict_compliance"  # the whole output contract holds
REFUSAL_RATE: Final = "refusal_rate"
MEAN_LENGTH: Final = "mean_length_tokens"
ACCURACY: Final = "accuracy"  # correct inside the contract, over completions with a gold answer
HALLUCINATION_RATE: Final = "hallucination_rate"  # see contract.py for the operational definition
WRONG_ANSWER_LENGTH: Final = "wrong_answer_length_tokens"  # mean length of wrong (extracted) answers
RAMBLING_RATE: Final = "rambling_rate"  # text outside the tags or over the length budget
EMPTY_RATE: Final = "empty_completion_rate"  # nothing but whitespace (collapse to EOS)
DISTINCT_RATIO: Final = "distinct_completion_ratio"  # distinct texts / completions (collapse)
REWARD_MEAN: Final = "reward_mean"  # mean of the summed reward
LEARNABLE_GROUPS: Final = "learnable_group_ratio"  # share of GRPO groups with reward variance > 0
MEAN_ABS_ADVANTAGE: Final = "mean_abs_advantage"  # mean |group-normalised advantage|
DOMAIN_COMPLIANCE_PREFIX: Final = "domain_compliance:"  # + domain name, e.g. domain_compliance:code
DOMAIN_ACCURACY_PREFIX: Final = "domain_accuracy:"

STEP_METRICS: Final[tuple[str, ...]] = (
    EXTRACTION_RATE,
    STRICT_COMPLIANCE,
    REFUSAL_RATE,
    MEAN_LENGTH,
    ACCURACY,
    HALLUCINATION_RATE,
    WRONG_ANSWER_LENGTH,
    RAMBLING_RATE,
    EMPTY_RATE,
    DISTINCT_RATIO,
    REWARD_MEAN,
    LEARNABLE_GROUPS,
    MEAN_ABS_ADVANTAGE,
)
RATE_METRICS: Final[frozenset[str]] = frozenset(
    {
        EXTRACTION_RATE,
        STRICT_COMPLIANCE,
        REFUSAL_RATE,
        ACCURACY,
        HALLUCINATION_RATE,
        RAMBLING_RATE,
        EMPTY_RATE,
        DISTINCT_RATIO,
        LEARNABLE_GROUPS,
    }
)


def is_known_metric(name: str) -> bool:
    """True for a step metric or a per-domain metric (`domain_compliance:<domain>`)."""
    if name in STEP_METRICS:
        return True
    for prefix in (DOMAIN_COMPLIANCE_PREFIX, DOMAIN_ACCURACY_PREFIX):
        if name.startswith(prefix) and len(name) > len(prefix):
            return True
    return False


def is_rate(name: str) -> bool:
    """Rates live in [0, 1] and have a binomial noise floor; lengths and rewards do not."""
    return name in RATE_METRICS or name.startswith((DOMAIN_COMPLIANCE_PREFIX, DOMAIN_ACCURACY_PREFIX))


@dataclass(frozen=True, slots=True)
class CompletionRecord:
    """One completion as the controller sees it. `correct` is None when the item has no gold."""

    domain: str
    contract_ok: bool
    extracted: bool
    refused: bool
    length_tokens: int
    rambling: bool
    correct: bool | None
    hallucination: bool
    empty: bool
    text_hash: int
    rewards: Mapping[str, float] = field(default_factory=dict)

    @property
    def total_reward(self) -> float:
        """The summed reward as Tunix computes it (nansum over the reward functions)."""
        return math.fsum(v for v in self.rewards.values() if math.isfinite(v))


@dataclass(frozen=True, slots=True)
class StepObservation:
    """One training step's roll-up: the input of `decide()` and one line of the metrics log.

    `metrics` holds the names above (a metric is absent when it cannot be computed, e.g. accuracy
    with no gold answers). `nonfinite` counts reward values that were NaN or infinite this step:
    they are dropped from every statistic and raise an alert, never a decision.
    """

    step: int
    completions: int
    metrics: Mapping[str, float]
    domain_counts: Mapping[str, int] = field(default_factory=dict)
    reward_means: Mapping[str, float] = field(default_factory=dict)
    nonfinite: int = 0

    def get(self, name: str) -> float | None:
        value = self.metrics.get(name)
        return None if value is None or not math.isfinite(value) else value

    def to_json(self) -> dict[str, object]:
        return {
            "step": self.step,
            "completions": self.completions,
            "metrics": dict(self.metrics),
            "domain_counts": dict(self.domain_counts),
            "reward_means": dict(self.reward_means),
            "nonfinite": self.nonfinite,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> StepObservation:
        return cls(
            step=int(data["step"]),  # type: ignore[arg-type]
            completions=int(data["completions"]),  # type: ignore[arg-type]
            metrics={str(k): float(v) for k, v in dict(data["metrics"]).items()},  # type: ignore[arg-type]
            domain_counts={str(k): int(v) for k, v in dict(data.get("domain_counts", {})).items()},  # type: ignore[arg-type]
            reward_means={str(k): float(v) for k, v in dict(data.get("reward_means", {})).items()},  # type: ignore[arg-type]
            nonfinite=int(data.get("nonfinite", 0)),  # type: ignore[arg-type]
        )


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def grpo_advantages(rewards: Sequence[float], group_size: int) -> list[float]:
    """Tunix's GRPO advantage: (r - group mean) / (group std + 1e-6), population std."""
    advantages: list[float] = []
    for start in range(0, len(rewards), group_size):
        group = rewards[start : start + group_size]
        mean = math.fsum(group) / len(group)
        std = math.sqrt(math.fsum((r - mean) ** 2 for r in group) / len(group))
        advantages.extend((r - mean) / (std + 1e-6) for r in group)
    return advantages


def summarize(step: int, records: Sequence[CompletionRecord], group_size: int) -> StepObservation:
    """Roll one step's completion records up into a StepObservation.

    Records arrive in Tunix's order: each prompt repeated `group_size` times consecutively, so
    records[i*G:(i+1)*G] is one GRPO group. Non-finite reward values are dropped and counted.
    """
    n = len(records)
    metrics: dict[str, float] = {}
    nonfinite = sum(1 for r in records for v in r.rewards.values() if not math.isfinite(v))
    if n:
        metrics[EXTRACTION_RATE] = sum(r.extracted for r in records) / n
        metrics[STRICT_COMPLIANCE] = sum(r.contract_ok for r in records) / n
        metrics[REFUSAL_RATE] = sum(r.refused for r in records) / n
        metrics[MEAN_LENGTH] = math.fsum(r.length_tokens for r in records) / n
        metrics[RAMBLING_RATE] = sum(r.rambling for r in records) / n
        metrics[EMPTY_RATE] = sum(r.empty for r in records) / n
        metrics[DISTINCT_RATIO] = len({r.text_hash for r in records}) / n
        graded = [r for r in records if r.correct is not None]
        if graded:
            metrics[ACCURACY] = sum(bool(r.correct) and r.contract_ok for r in graded) / len(graded)
            metrics[HALLUCINATION_RATE] = sum(r.hallucination for r in graded) / len(graded)
            wrong = [r.length_tokens for r in graded if r.extracted and not r.correct]
            if wrong:
                metrics[WRONG_ANSWER_LENGTH] = math.fsum(wrong) / len(wrong)
        totals = [r.total_reward for r in records]
        metrics[REWARD_MEAN] = math.fsum(totals) / n
        if group_size > 1 and n % group_size == 0:
            groups = [totals[i : i + group_size] for i in range(0, n, group_size)]
            metrics[LEARNABLE_GROUPS] = sum(max(g) - min(g) > 1e-9 for g in groups) / len(groups)
            metrics[MEAN_ABS_ADVANTAGE] = math.fsum(abs(a) for a in grpo_advantages(totals, group_size)) / n
    domain_counts: dict[str, int] = {}
    for r in records:
        domain_counts[r.domain] = domain_counts.get(r.domain, 0) + 1
    for domain in domain_counts:
        of_domain = [r for r in records if r.domain == domain]
        metrics[DOMAIN_COMPLIANCE_PREFIX + domain] = sum(r.contract_ok for r in of_domain) / len(of_domain)
        graded = [r for r in of_domain if r.correct is not None]
        if graded:
            metrics[DOMAIN_ACCURACY_PREFIX + domain] = sum(bool(r.correct) and r.contract_ok for r in graded) / len(graded)
    reward_means: dict[str, float] = {}
    for name in {k for r in records for k in r.rewards}:
        finite = [r.rewards[name] for r in records if name in r.rewards and math.isfinite(r.rewards[name])]
        mean = _mean(finite)
        if mean is not None:
            reward_means[name] = mean
    return StepObservation(step, n, metrics, domain_counts, reward_means, nonfinite)
