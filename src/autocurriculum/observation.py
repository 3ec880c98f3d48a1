"""What the controller sees: per-completion records and the per-step roll-up.

The reward call is the only place completions are seen, so the reward dispatcher turns each
completion into one `CompletionRecord` (held as columns in a `RecordBatch`); `summarize` rolls a
batch of them up into one `StepObservation`. Everything downstream (controller, exporter, metrics
log, replay) reads these names and nothing else, so a metric is spelt the same in a policy
criterion, a Prometheus series and a dashboard panel.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial, reduce
from itertools import compress, repeat
from operator import add, and_, attrgetter, is_, is_not
from typing import Any, Final

from autocurriculum.json_values import as_float, as_int, as_mapping
from autocurriculum.metric_names import (
    ACCURACY,
    DISTINCT_RATIO,
    DOMAIN_ACCURACY_PREFIX,
    DOMAIN_COMPLIANCE_PREFIX,
    DOMAIN_SEPARATOR,
    EMPTY_RATE,
    EXTRACTION_RATE,
    GRADED,
    HALLUCINATION_RATE,
    LEARNABLE_GROUPS,
    MEAN_ABS_ADVANTAGE,
    MEAN_LENGTH,
    PER_DOMAIN_METRICS,
    RAMBLING_RATE,
    RATE_METRICS,
    REFUSAL_RATE,
    REWARD_MEAN,
    STEP_METRICS,
    STRICT_COMPLIANCE,
    WRONG_ANSWER_LENGTH,
    is_known_metric,
    is_rate,
    split_domain_metric,
)

# the metric vocabulary (metric_names.py) is re-exported: `observation.ACCURACY` is the usual spelling
__all__ = [
    "ACCURACY", "DISTINCT_RATIO", "DOMAIN_ACCURACY_PREFIX", "DOMAIN_COMPLIANCE_PREFIX", "DOMAIN_SEPARATOR",
    "EMPTY_RATE", "EQUAL_REWARDS_TOLERANCE", "EXTRACTION_RATE", "GRADED", "GRPO_EPSILON", "HALLUCINATION_RATE",
    "LEARNABLE_GROUPS", "MEAN_ABS_ADVANTAGE", "MEAN_LENGTH", "PER_DOMAIN_METRICS", "RAMBLING_RATE", "RATE_METRICS",
    "REFUSAL_RATE", "REWARD_MEAN", "STEP_METRICS", "STRICT_COMPLIANCE", "WRONG_ANSWER_LENGTH", "ZERO_ADVANTAGE",
    "CompletionRecord", "RecordBatch", "RewardColumn", "StepObservation", "grpo_advantages", "is_known_metric",
    "is_rate", "split_domain_metric", "summarize",
]


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

    def tunix_aliases(self) -> dict[str, float]:
        """The same figures under the names Tunix's and TRL's loggers give them (metrics.jsonl's "aliases").

        Why: people who watch Tunix or TRL runs know `completions/mean_length`, `frac_reward_zero_std`
        and `rewards/<name>/mean`; the line says each under that name too, computed from this step.
        """
        aliases: dict[str, float] = {}
        length, learnable, reward = self.get(MEAN_LENGTH), self.get(LEARNABLE_GROUPS), self.get(REWARD_MEAN)
        if length is not None:
            aliases["completions/mean_length"] = length
        if learnable is not None:
            aliases["frac_reward_zero_std"] = 1.0 - learnable
        if reward is not None:
            aliases["rewards/score/mean"] = reward
        for name, value in self.reward_means.items():
            if math.isfinite(value):
                aliases[f"rewards/{name}/mean"] = value
        return aliases

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> StepObservation:
        return cls(
            step=as_int(data["step"]),
            completions=as_int(data["completions"]),
            metrics={str(k): as_float(v) for k, v in as_mapping(data["metrics"]).items()},
            domain_counts={str(k): as_int(v) for k, v in as_mapping(data.get("domain_counts", {})).items()},
            reward_means={str(k): as_float(v) for k, v in as_mapping(data.get("reward_means", {})).items()},
            nonfinite=as_int(data.get("nonfinite", 0)),
        )


GRPO_EPSILON: Final = 1e-6  # Tunix's guard in the advantage denominator
EQUAL_REWARDS_TOLERANCE: Final = 1e-9  # summed rewards closer than this count as equal (rounding)
ZERO_ADVANTAGE: Final = 1e-3  # a trainer's advantage at most this large is rounding over equal rewards


def grpo_advantages(rewards: Sequence[float], group_size: int) -> list[float]:
    """Tunix's GRPO advantage (tunix/rl/algo_core.py `compute_advantages`, estimator "grpo").

    Per group of `group_size` consecutive completions: (r - group mean) / (group std + 1e-6), with
    the SAMPLE standard deviation (ddof=1), as Tunix computes it with numpy. A group whose rewards
    are all equal has advantage 0 everywhere. `len(rewards)` must be a multiple of `group_size` >= 2.
    """
    if group_size < 2 or len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {group_size} (need a size >= 2)")
    advantages: list[float] = []
    for start in range(0, len(rewards), group_size):
        group = rewards[start : start + group_size]
        mean = sum(group) / group_size
        std = math.sqrt(sum((r - mean) ** 2 for r in group) / (group_size - 1))
        advantages.extend((r - mean) / (std + GRPO_EPSILON) for r in group)
    return advantages


def _learnability(totals: Sequence[float], group_size: int) -> tuple[float, float]:
    """(share of groups whose summed rewards are not all equal, mean |advantage|), Tunix's formula.

    "Equal" allows 1e-9 of summation rounding: such a group's Tunix advantages are below 1e-3.
    """
    learnable = 0
    abs_sum = 0.0
    root = math.sqrt(group_size - 1)
    for group in zip(*[iter(totals)] * group_size):
        if max(group) - min(group) <= EQUAL_REWARDS_TOLERANCE:
            continue  # zero advantage: nothing to learn from this group
        learnable += 1
        mean = sum(group) / group_size
        centred = [r - mean for r in group]
        abs_sum += sum(map(abs, centred)) / (math.hypot(*centred) / root + GRPO_EPSILON)
    return learnable / (len(totals) // group_size), abs_sum / len(totals)


def _trainer_learnability(advantages: Sequence[float], group_size: int) -> tuple[float, float]:
    """(share of groups with a non-zero advantage, mean |advantage|) from the advantages the trainer trains on.

    A group whose rewards are all equal gets advantages of at most ~1e-9 / 1e-6 from Tunix (rounding
    over its epsilon): a group counts as learnable when one advantage exceeds `ZERO_ADVANTAGE`.
    """
    finite = [a if math.isfinite(a) else 0.0 for a in advantages]
    groups = list(zip(*[iter(finite)] * group_size))
    learnable = sum(1 for group in groups if max(map(abs, group)) > ZERO_ADVANTAGE)
    return learnable / len(groups), sum(map(abs, finite)) / len(finite)


RewardColumn = Sequence["float | None"]  # None: this completion was scored by a set without that reward


class RecordBatch(Sequence[CompletionRecord]):
    """The records of one step as columns, one list per field: what the reward pass builds and
    `summarize` reads.

    Why columns: a step's roll-up reads each field of every record once. Building one object per
    completion only to transpose the objects back into columns cost as much as parsing the
    completions (issue 3's benchmark), so the hot path never builds them. It is still a sequence of
    `CompletionRecord`s: indexing or iterating materialises records, for tests, held-out report
    rows and anything else that wants one completion at a time.
    """

    __slots__ = ("domain", "contract_ok", "extracted", "refused", "length_tokens", "rambling", "correct",
                 "hallucination", "empty", "text_hash", "rewards", "advantages")

    def __init__(
        self, domain: Sequence[str], contract_ok: Sequence[bool], extracted: Sequence[bool], refused: Sequence[bool],
        length_tokens: Sequence[int], rambling: Sequence[bool], correct: Sequence[bool | None],
        hallucination: Sequence[bool], empty: Sequence[bool], text_hash: Sequence[int],
        rewards: Mapping[str, RewardColumn],
    ) -> None:
        n = len(domain)
        columns = (contract_ok, extracted, refused, length_tokens, rambling, correct, hallucination, empty, text_hash,
                   *rewards.values())
        if any(len(column) != n for column in columns):
            raise ValueError(f"record columns of different lengths: {sorted({n, *map(len, columns)})}")
        self.domain, self.contract_ok, self.extracted, self.refused = domain, contract_ok, extracted, refused
        self.length_tokens, self.rambling, self.correct = length_tokens, rambling, correct
        self.hallucination, self.empty, self.text_hash, self.rewards = hallucination, empty, text_hash, rewards
        self.advantages: Sequence[float] | None = None  # the trainer's GRPO advantages, when it handed them over

    def with_advantages(self, advantages: Sequence[float]) -> RecordBatch:
        """The same records carrying the advantages the trainer computed for them (one per record)."""
        if len(advantages) != len(self):
            raise ValueError(f"{len(advantages)} advantages for {len(self)} records")
        batch = RecordBatch(self.domain, self.contract_ok, self.extracted, self.refused, self.length_tokens,
                            self.rambling, self.correct, self.hallucination, self.empty, self.text_hash, self.rewards)
        batch.advantages = advantages
        return batch

    def __len__(self) -> int:
        return len(self.domain)

    def __getitem__(self, index: Any) -> Any:  # an int gives a record, a slice a list of them, as for a list
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return CompletionRecord(
            self.domain[index], self.contract_ok[index], self.extracted[index], self.refused[index],
            self.length_tokens[index], self.rambling[index], self.correct[index], self.hallucination[index],
            self.empty[index], self.text_hash[index],
            {name: column[index] for name, column in self.rewards.items() if column[index] is not None},
        )

    def __repr__(self) -> str:
        return f"RecordBatch({len(self)} records, rewards {list(self.rewards)})"

    @classmethod
    def from_records(cls, records: Sequence[CompletionRecord]) -> RecordBatch:
        """Columns of hand-built records (each may carry its own reward names)."""
        if isinstance(records, RecordBatch):
            return records
        if not records:
            return cls([], [], [], [], [], [], [], [], [], [], {})
        columns = [list(column) for column in zip(*map(_RECORD_COLUMNS, records))]
        reward_dicts = columns.pop()
        names = dict.fromkeys(name for reward in reward_dicts for name in reward)
        rewards = {name: [reward.get(name) for reward in reward_dicts] for name in names}
        return cls(*columns, rewards)  # type: ignore[arg-type, call-arg]  # the records' fields transposed, in field order

    @classmethod
    def concat(cls, batches: Sequence[RecordBatch]) -> RecordBatch:
        """One batch of several, in order; a reward some of them lack is None in their rows."""
        if len(batches) == 1:
            return batches[0]
        names = dict.fromkeys(name for batch in batches for name in batch.rewards)
        joined: list[list[object]] = [[] for _ in range(10)]  # the ten per-record columns
        for batch in batches:
            for column, part in zip(joined, (batch.domain, batch.contract_ok, batch.extracted, batch.refused,
                                             batch.length_tokens, batch.rambling, batch.correct, batch.hallucination,
                                             batch.empty, batch.text_hash)):
                column.extend(part)
        rewards: dict[str, list[float | None]] = {name: [] for name in names}
        for batch in batches:
            for name, values in rewards.items():
                values.extend(batch.rewards.get(name) or [None] * len(batch))
        joined_batch = cls(*joined, rewards)  # type: ignore[arg-type, call-arg]  # the batches' columns joined, in field order
        if batches and all(batch.advantages is not None for batch in batches):
            joined_batch.advantages = [a for batch in batches for a in batch.advantages or ()]
        return joined_batch


_RECORD_COLUMNS: Final = attrgetter(
    "domain", "contract_ok", "extracted", "refused", "length_tokens", "rambling", "correct", "hallucination", "empty",
    "text_hash", "rewards",
)


def summarize(step: int, records: Sequence[CompletionRecord], group_size: int) -> StepObservation:
    """Roll one step's completion records up into a StepObservation.

    Records arrive in Tunix's order: each prompt repeated `group_size` times consecutively, so
    records[i*G:(i+1)*G] is one GRPO group. A metric is absent when it cannot be computed: accuracy
    and hallucination without a graded record (one with a gold), the wrong-answer length without a
    wrong extracted answer, learnability when `group_size` < 2 or the records do not split into
    whole groups. Over graded records: accuracy = correct AND inside the contract (what
    check_answer_strict rewards), hallucination as defined in contract.py. A completion's summed
    reward is its finite rewards added in the set's order (Tunix's nansum); non-finite values are
    dropped from every statistic and counted in `nonfinite`. Learnability is read from the
    advantages the trainer handed over with the records (Tunix's own, what the update uses) and
    recomputed with Tunix's formula only for records without them (hand-built ones, evaluation).

    Every count is a C-level sum over a column of the `RecordBatch` (hand-built records are
    transposed into one first): benchmarks/rewards.py prints the roll-up's cost per completion
    beside the reward pass it follows.
    """
    batch = RecordBatch.from_records(records)
    n = len(batch)
    if not n:
        return StepObservation(step, 0, {}, {}, {}, 0)
    contract_ok, extracted, correct, lengths = batch.contract_ok, batch.extracted, batch.correct, batch.length_tokens
    right_mask = list(map(and_, contract_ok, map(is_, correct, repeat(True))))
    graded_mask = list(map(is_not, correct, repeat(None)))
    graded = sum(graded_mask)
    strict = sum(contract_ok)
    metrics: dict[str, float] = {
        EXTRACTION_RATE: sum(extracted) / n,
        STRICT_COMPLIANCE: strict / n,
        REFUSAL_RATE: sum(batch.refused) / n,
        MEAN_LENGTH: sum(lengths) / n,
        RAMBLING_RATE: sum(batch.rambling) / n,
        EMPTY_RATE: sum(batch.empty) / n,
        DISTINCT_RATIO: len(set(batch.text_hash)) / n,
    }
    if graded:
        metrics[ACCURACY] = sum(right_mask) / graded
        metrics[HALLUCINATION_RATE] = sum(map(and_, batch.hallucination, graded_mask)) / graded
        wrong_mask = list(map(and_, extracted, map(is_, correct, repeat(False))))
        wrong = sum(wrong_mask)
        if wrong:
            metrics[WRONG_ANSWER_LENGTH] = sum(compress(lengths, wrong_mask)) / wrong
    totals, reward_means, nonfinite = _reward_columns(batch.rewards, n)
    metrics[REWARD_MEAN] = sum(totals) / n
    if group_size >= 2 and n % group_size == 0:
        metrics[LEARNABLE_GROUPS], metrics[MEAN_ABS_ADVANTAGE] = (
            _learnability(totals, group_size) if batch.advantages is None
            else _trainer_learnability(batch.advantages, group_size)
        )
    metrics[GRADED] = float(graded)
    domains = batch.domain
    domain_counts = {domains[0]: n} if domains.count(domains[0]) == n else dict(Counter(domains))
    if len(domain_counts) == 1:
        _per_domain(metrics, domains[0], metrics)
    else:
        for domain, count in domain_counts.items():
            mine = [d == domain for d in domains]
            domain_graded = sum(compress(graded_mask, mine))
            figures = {
                EXTRACTION_RATE: sum(compress(extracted, mine)) / count,
                STRICT_COMPLIANCE: sum(compress(contract_ok, mine)) / count,
                REFUSAL_RATE: sum(compress(batch.refused, mine)) / count,
                MEAN_LENGTH: sum(compress(lengths, mine)) / count,
                RAMBLING_RATE: sum(compress(batch.rambling, mine)) / count,
                GRADED: float(domain_graded),
            }
            if domain_graded:
                figures[ACCURACY] = sum(compress(right_mask, mine)) / domain_graded
                figures[HALLUCINATION_RATE] = sum(compress(map(and_, batch.hallucination, graded_mask), mine)) \
                    / domain_graded
            _per_domain(metrics, domain, figures)
    return StepObservation(step, n, metrics, domain_counts, reward_means, nonfinite)


def _per_domain(metrics: dict[str, float], domain: str, figures: Mapping[str, float]) -> None:
    """Add one domain's figures to `metrics` as `<metric>:<domain>`, and the two older per-domain names."""
    for name in PER_DOMAIN_METRICS:
        if name in figures:
            metrics[name + DOMAIN_SEPARATOR + domain] = figures[name]
    metrics[DOMAIN_COMPLIANCE_PREFIX + domain] = figures[STRICT_COMPLIANCE]
    if ACCURACY in figures:
        metrics[DOMAIN_ACCURACY_PREFIX + domain] = figures[ACCURACY]


def _reward_columns(rewards: Mapping[str, RewardColumn], n: int) -> tuple[list[float], dict[str, float], int]:
    """(summed finite reward per completion, finite mean per reward name, count of non-finite values)."""
    columns = list(rewards.values())
    if not columns:
        return [0.0] * n, {}, 0
    try:  # the fast path: every value present (a None raises TypeError) and finite; added left to right
        # a None in a column raises TypeError here, which is how the slow path below is chosen
        totals: list[float] = list(reduce(partial(map, add), columns))  # type: ignore[arg-type]  # see above
        if math.isfinite(sum(totals)):
            return totals, {name: sum(column) / n for name, column in rewards.items()}, 0  # type: ignore[arg-type]  # no None: summed above
    except TypeError:  # some records were scored by a set without one of these rewards
        pass
    totals = [0.0] * n
    means: dict[str, float] = {}
    nonfinite = 0
    for name, column in rewards.items():
        total, count = 0.0, 0
        for i, value in enumerate(column):
            if value is None:
                continue
            if math.isfinite(value):
                totals[i] += value
                total += value
                count += 1
            else:
                nonfinite += 1
        if count:
            means[name] = total / count
    return totals, means, nonfinite
