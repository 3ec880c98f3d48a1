"""The five built-in rewards' values for a batch of parsed completions: pure column functions.

Why apart from the dispatcher (rewards.py, which says why each default has its value): these are the
reward rules themselves, one list per reward for a whole batch, with no state, no Tunix and no
parsing; the dispatcher parses, grades and hands them the columns. Per-domain length budgets
(`budget:<domain>`) and the "not applicable" value of an ungraded item are decided here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Final, NamedTuple

from autocurriculum.contract import ParsedFields
from autocurriculum.spec import DOMAIN_BUDGET_PREFIX, REWARD_PARAMETERS, RewardSpec

DEFAULT_DOMAIN: Final = "math"  # when the batch carries no `domain` column (plain GSM8K)

# Tunix's "not applicable" value: `check_answer_strict` returns it for an ungraded completion. Tunix adds the
# reward functions with np.nansum (rl/reward_manager.py), so NaN adds nothing to the summed reward that GRPO's
# advantages are computed from. 0.0 would give the same advantages (a group is one prompt, so a whole group
# is graded or not, and a constant column moves no advantage: algo_core.compute_advantages subtracts the
# group mean), but 0.0 is a judgement ("wrong" with the default parameters, and not even that with
# `wrong != 0`) and would pull every correctness mean towards it. Tunix 0.1.7 logs each function's column
# with np.mean, so its `rewards/check_answer_strict` is NaN for a batch with ungraded items (the daemon's
# copy of Tunix's figures drops non-finite ones); the daemon's own `reward_means` figure for it is the
# mean over graded completions: the records carry None there (observation.RewardColumn: "no value"), so
# the roll-up never counts it as a broken, non-finite reward either.
NOT_APPLICABLE: Final = math.nan
CORRECTNESS_REWARD: Final = "check_answer_strict"

Column = list[float]
Correct = Sequence["bool | None"]


class ParsedColumns(NamedTuple):
    """A batch's `contract.parse_fields` tuples transposed: one list per field, what the rewards read."""

    strict_ok: Sequence[bool]
    answer: Sequence[str | None]
    reasoning: Sequence[str | None]
    outside_chars: Sequence[int]
    refused: Sequence[bool]
    length_tokens: Sequence[int]
    empty: Sequence[bool]

    @classmethod
    def of(cls, parsed: Sequence[ParsedFields]) -> ParsedColumns:
        if not parsed:
            return cls([], [], [], [], [], [], [])
        return cls(*map(list, zip(*parsed)))


Budgets = float | Sequence[float]  # one length budget for the batch, or one per completion
ColumnFn = Callable[[Mapping[str, float], ParsedColumns, Correct, Budgets], Column]


def _refusal(p: Mapping[str, float], parsed: ParsedColumns, correct: Correct, budgets: Budgets) -> Column:
    penalty = p["penalty"]
    return [penalty if refused else 0.0 for refused in parsed.refused]


def _gate(p: Mapping[str, float], parsed: ParsedColumns, correct: Correct, budgets: Budgets) -> Column:
    passed, failed = p["pass"], p["fail"]
    return [passed if ok else failed for ok in parsed.strict_ok]


def _light_length(p: Mapping[str, float], parsed: ParsedColumns, correct: Correct, budgets: Budgets) -> Column:
    per, floor = p["per_token"], p["floor"]
    within = max(floor, 0.0)
    if isinstance(budgets, float):  # one budget for the whole batch: the common case, one pass
        budget = budgets
        return [within if length <= budget else (v if (v := per * (length - budget)) > floor else floor) + 0.0
                for length in parsed.length_tokens]
    return [within if length <= budget else (v if (v := per * (length - budget)) > floor else floor) + 0.0
            for length, budget in zip(parsed.length_tokens, budgets)]


def _answer(p: Mapping[str, float], parsed: ParsedColumns, correct: Correct, budgets: Budgets) -> Column:
    right, wrong = p["correct"], p["wrong"]
    if None not in correct:  # every item graded
        return [right if (ok and c) else wrong for ok, c in zip(parsed.strict_ok, correct)]
    return [NOT_APPLICABLE if c is None else right if (ok and c) else wrong for ok, c in zip(parsed.strict_ok, correct)]


def _length(p: Mapping[str, float], parsed: ParsedColumns, correct: Correct, budgets: Budgets) -> Column:
    right, wrong, floor = p["per_token_correct"], p["per_token_wrong"], p["floor"]
    within = max(floor, 0.0)
    # an ungraded completion (c is None) inside the contract pays the correct rate: nothing says it is wrong
    if isinstance(budgets, float):
        budget = budgets
        return [within if length <= budget else (v if (v := (right if (ok and c is not False) else wrong)
                                                      * (length - budget)) > floor else floor) + 0.0
                for length, ok, c in zip(parsed.length_tokens, parsed.strict_ok, correct)]
    return [within if length <= budget else (v if (v := (right if (ok and c is not False) else wrong)
                                                  * (length - budget)) > floor else floor) + 0.0
            for length, budget, ok, c in zip(parsed.length_tokens, budgets, parsed.strict_ok, correct)]


_COLUMNS: Final[Mapping[str, ColumnFn]] = {
    "punish_refusal": _refusal,
    "strict_format_gate": _gate,
    "light_length_penalty": _light_length,
    "check_answer_strict": _answer,
    "penalize_length": _length,
}


def reward_params(spec: RewardSpec) -> dict[str, float]:
    """The spec's parameters over the defaults; an unknown reward or a non-finite value is an error."""
    if spec.name not in REWARD_PARAMETERS:
        raise ValueError(f"unknown reward function {spec.name!r}; known: {', '.join(sorted(REWARD_PARAMETERS))}")
    params = {**REWARD_PARAMETERS[spec.name], **{k: float(v) for k, v in spec.params.items()}}
    for key, value in params.items():
        if not math.isfinite(value):
            raise ValueError(f"reward {spec.name!r}: parameter {key!r} must be a finite number, got {value!r}")
    return params


def budget_for(params: Mapping[str, float], domain: str) -> float:
    """A length reward's budget for `domain`: its `budget:<domain>` parameter, else its `budget`."""
    return params.get(DOMAIN_BUDGET_PREFIX + domain, params["budget"])


def reward_column(name: str, params: Mapping[str, float], parsed: ParsedColumns, correct: Correct,
                  domains: Sequence[str] | None = None) -> Column:
    """One reward's values for a batch of parsed completions (pure).

    Finite floats, except `check_answer_strict` on an ungraded completion (`correct` None): NaN, Tunix's
    "not applicable" (see NOT_APPLICABLE). `domains` (one per completion) picks the length budgets.
    """
    budgets: Budgets = 0.0
    if "budget" in params:
        budgets = params["budget"]
        if domains is not None and any(key.startswith(DOMAIN_BUDGET_PREFIX) for key in params):
            per_domain = {d: budget_for(params, d) for d in set(domains)}
            if len(set(per_domain.values())) > 1:
                budgets = [per_domain[d] for d in domains]
            else:
                budgets = next(iter(per_domain.values()), budgets)
    column = _COLUMNS[name](params, parsed, correct, budgets)
    if not math.isfinite(sum(column)):  # only absurd parameters overflow; a sum of finite values may too
        column = [v if math.isfinite(v) or (c is None and v != v) else 0.0 for v, c in zip(column, correct)]
    return column
