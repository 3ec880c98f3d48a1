"""The names of the step metrics: what a policy criterion, metrics.jsonl and the exporter call each figure.

Why a module of its own: the policy reader, the controller, the exporter and the roll-up must agree on
every name, per-domain names included (`<metric>:<domain>`), and reading a policy should not need
the roll-up's code. `observation` re-exports every name here.
"""

from __future__ import annotations

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
GRADED: Final = "graded_completions"  # completions whose item has a gold (accuracy's denominator)
DOMAIN_COMPLIANCE_PREFIX: Final = "domain_compliance:"  # + domain name, e.g. domain_compliance:code
DOMAIN_ACCURACY_PREFIX: Final = "domain_accuracy:"
DOMAIN_SEPARATOR: Final = ":"
# Every watched figure per domain, named `<metric>:<domain>` (e.g. `refusal_rate:code`, `accuracy:math`),
# computed over that domain's completions exactly as the step metric is over all of them; accuracy and
# hallucination only where the domain has graded completions. `domain_compliance:<d>` and
# `domain_accuracy:<d>` are the older names of `strict_compliance:<d>` and `accuracy:<d>`, kept as they are.
PER_DOMAIN_METRICS: Final[tuple[str, ...]] = (
    "extraction_rate", "strict_compliance", "refusal_rate", "mean_length_tokens", "rambling_rate", "accuracy",
    "hallucination_rate", "graded_completions",
)

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
    GRADED,
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


def split_domain_metric(name: str) -> tuple[str, str] | None:
    """(step metric, domain) of a per-domain metric name, `<metric>:<domain>` or an older prefix; else None."""
    for prefix, metric in ((DOMAIN_COMPLIANCE_PREFIX, STRICT_COMPLIANCE), (DOMAIN_ACCURACY_PREFIX, ACCURACY)):
        if name.startswith(prefix):
            return (metric, name[len(prefix):]) if len(name) > len(prefix) else None
    metric, separator, domain = name.partition(DOMAIN_SEPARATOR)
    if separator and domain and metric in PER_DOMAIN_METRICS:
        return metric, domain
    return None


def is_known_metric(name: str) -> bool:
    """True for a step metric or a per-domain metric (`<metric>:<domain>`, `domain_compliance:<domain>`)."""
    return name in STEP_METRICS or split_domain_metric(name) is not None


def is_rate(name: str) -> bool:
    """Rates live in [0, 1] and have a binomial noise floor; lengths, counts and rewards do not."""
    if name in RATE_METRICS:
        return True
    split = split_domain_metric(name)
    return split is not None and split[0] in RATE_METRICS
